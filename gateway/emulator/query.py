"""RouterOS API ``print`` queries (``?`` words), evaluated on a stack as the router does.

Each condition word pushes a result; ``?#`` words combine the stack (``|`` or, ``&`` and,
``!`` not, ``.`` duplicate the top, a digit pushes a copy of that stack entry); what is left
on the stack is ANDed together. The order of query words matters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

Row = Mapping[str, str]
Condition = Callable[[Row], bool]


class QueryError(ValueError):
    """A query word the router would reject."""


def _number(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


# A query value is read as the property's type: a boolean property matches ``yes``/``no`` as
# well as ``true``/``false`` (librouteros sends ``Key("dynamic") == False`` as ``?=dynamic=no``).
_BOOLEANS: Final = {"true": "true", "yes": "true", "false": "false", "no": "false"}


def _compare(op: str, name: str, value: str) -> Condition:
    def check(row: Row) -> bool:
        have = row.get(name)
        if have is None:
            return False
        if op == "=":
            if have == value:
                return True
            boolean = _BOOLEANS.get(have)
            return boolean is not None and boolean == _BOOLEANS.get(value)
        a, b = _number(have), _number(value)
        if a is not None and b is not None:
            return a < b if op == "<" else a > b
        return have < value if op == "<" else have > value

    return check


def _present(name: str) -> Condition:
    return lambda row: name in row


def _absent(name: str) -> Condition:
    return lambda row: name not in row


def compile_query(words: Sequence[str]) -> Callable[[Row], bool] | None:
    """Compile ``?`` words (without other words) into a row predicate; None when there are none."""
    if not words:
        return None
    program: list[Condition | str] = []
    for word in words:
        body = word[1:]
        if body.startswith("#"):
            ops = body[1:]
            if not ops or any(c not in "|&!." and not c.isdigit() for c in ops):
                raise QueryError(f"unknown query operation {word}")
            program.append(ops)
        elif body[:1] in ("=", "<", ">"):
            name, sep, value = body[1:].partition("=")
            if not sep or not name:
                raise QueryError(f"malformed query word {word}")
            program.append(_compare(body[0], name, value))
        elif body.startswith("-"):
            program.append(_absent(body[1:]))
        elif "=" in body:
            name, _, value = body.partition("=")
            program.append(_compare("=", name, value))
        else:
            program.append(_present(body))

    def evaluate(row: Row) -> bool:
        stack: list[bool] = []
        for step in program:
            if not isinstance(step, str):
                stack.append(step(row))
                continue
            for op in step:
                if op.isdigit():
                    index = int(op)
                    stack.append(stack[index] if index < len(stack) else False)
                elif op == "!":
                    if stack:
                        stack[-1] = not stack[-1]
                elif op == ".":
                    if stack:
                        stack.append(stack[-1])
                elif len(stack) >= 2:
                    b, a = stack.pop(), stack.pop()
                    stack.append(a or b if op == "|" else a and b)
        return all(stack)

    return evaluate
