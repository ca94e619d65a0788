"""Query parameters are single-valued: one given twice (``?limit=3&limit=200``) is a 422 naming
it, never silently its last value, as every other request the contract cannot read is."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.datastructures import QueryParams


def reject_repeated(params: QueryParams, model: type[BaseModel]) -> None:
    """Raise a request-validation error for each of ``model``'s parameters given more than once.

    Unknown parameters are ignored, repeated or not, like everywhere else.
    """
    repeated = [name for name in model.model_fields if len(params.getlist(name)) > 1]
    if repeated:
        raise RequestValidationError(
            [
                {
                    "type": "repeated_parameter",
                    "loc": ("query", name),
                    "msg": "given more than once; send it once",
                    "input": params.getlist(name),
                }
                for name in repeated
            ]
        )
