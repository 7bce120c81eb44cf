"""JSON views; bad input gets a status and `{"message": ...}`."""

import functools
import json
import typing

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from orders.models import Order, Product
from orders.services import fulfil
from restate_pg.contrib.django import enqueue


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"message": message}, status=status)


def _bad_input_is_400(view: typing.Callable[..., JsonResponse]) -> typing.Callable[..., JsonResponse]:
    @functools.wraps(view)
    def checked(request: HttpRequest, *args: typing.Any, **kwargs: typing.Any) -> JsonResponse:
        try:
            return view(request, *args, **kwargs)
        except ValueError as exc:
            return _error(400, str(exc))

    return checked


def _fields(request: HttpRequest, text: str, count: str) -> typing.Tuple[str, int]:
    """The body's string field `text` and non-negative integer field `count`, or ValueError."""
    try:
        body = json.loads(request.body)
    except ValueError:
        raise ValueError("the body must be JSON") from None
    if not isinstance(body, dict) or text not in body or count not in body:
        raise ValueError(f"the body must be a JSON object with {text} and {count}")
    value = body[count]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{count} must be a non-negative integer")
    return str(body[text]), value


@require_POST
@_bad_input_is_400
def stock_product(request: HttpRequest) -> JsonResponse:
    name, stock = _fields(request, "name", "stock")
    product, _ = Product.objects.update_or_create(name=name, defaults={"stock": stock})
    return JsonResponse({"name": product.name, "stock": product.stock}, status=201)


@require_GET
def product(request: HttpRequest, name: str) -> JsonResponse:
    found = Product.objects.filter(name=name).first()
    if found is None:
        return _error(404, f"no product {name!r}")
    return JsonResponse({"name": found.name, "stock": found.stock})


@require_POST
@_bad_input_is_400
def place_order(request: HttpRequest) -> JsonResponse:
    name, quantity = _fields(request, "product", "quantity")
    item = Product.objects.filter(name=name).first()
    if item is None:
        return _error(404, f"no product {name!r}")
    with transaction.atomic():
        order = Order.objects.create(product=item, quantity=quantity)
        handle = enqueue(fulfil, order.id)  # committed with the order, or not at all
    return JsonResponse({"order": order.id, "invocation": handle.invocation_id}, status=202)


@require_GET
def order(request: HttpRequest, order_id: int) -> JsonResponse:
    found = Order.objects.select_related("product").filter(id=order_id).first()
    if found is None:
        return _error(404, f"no order {order_id}")
    return JsonResponse({"id": found.id, "product": found.product.name, "quantity": found.quantity,
                         "status": found.status})
