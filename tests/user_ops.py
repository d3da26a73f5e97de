"""A user operator, registered at import (named in a search config's operator_modules)."""

from autoloss_zero.expr import make_operator, register_operator

CUBE = register_operator(make_operator("Cube", 1, lambda x: x * x * x, source="({0} ** 3)"))
