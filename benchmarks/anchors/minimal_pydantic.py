"""The cold-start anchor of the command line: the smallest program that does what one `recommend`
does at its edges (import pydantic, define a model, validate one input, print it as JSON).
A whole-process run of ours is measured beside a whole-process run of this one."""

import pydantic


class Minimal(pydantic.BaseModel):
    name: str
    count: int


print(Minimal.model_validate({"name": "x", "count": 1}).model_dump_json())
