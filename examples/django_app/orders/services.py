"""The shop's durable handler: an order is fulfilled by a worker (`manage.py restate_worker`)."""

import restate_pg as restate
from restate_pg import Context, TerminalError
from restate_pg.contrib.django import run_in_transaction

from orders.models import Order, Product

orders = restate.Service("Orders")


def reserve_stock(order_id: int) -> str:
    """Plain ORM code, run once: in the transaction that journals its result."""
    try:
        order = Order.objects.select_for_update().get(id=order_id)
    except Order.DoesNotExist:
        raise TerminalError(f"no order {order_id}", 404) from None
    if order.status != Order.PENDING:  # fulfilled by an earlier invocation (a repeated request)
        return order.status
    product = Product.objects.select_for_update().get(id=order.product_id)
    if product.stock >= order.quantity:
        product.stock -= order.quantity
        product.save(update_fields=["stock"])
        order.status = Order.RESERVED
    else:
        order.status = Order.REJECTED
    order.save(update_fields=["status"])
    return order.status


@orders.handler()
async def fulfil(ctx: Context, order_id: int) -> str:
    return await run_in_transaction(ctx, "reserve stock", reserve_stock, order_id)


app = restate.app([orders])
