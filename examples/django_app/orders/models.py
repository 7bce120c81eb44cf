from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100, unique=True)
    stock = models.PositiveIntegerField(default=0)


class Order(models.Model):
    PENDING, RESERVED, REJECTED = "pending", "reserved", "rejected"

    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=20, default=PENDING)
