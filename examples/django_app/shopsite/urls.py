from django.urls import path

from orders import views

urlpatterns = [
    path("products/", views.stock_product),
    path("products/<str:name>/", views.product),
    path("orders/", views.place_order),
    path("orders/<int:order_id>/", views.order),
]
