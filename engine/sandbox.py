"""A sandbox for user expressions and scripts: a vetted subset of Python, interpreted here.

Nothing a user writes ever reaches ``eval``/``exec``. The source is parsed with ``ast``, every
node checked against a whitelist (no imports, functions, lambdas, classes, ``global``, ``with``,
``try``, starred or keyword-splat calls; no name or attribute starting with ``_``), and then the
tree is walked by :class:`_Interpreter`, which only knows JSON-like values:

* ``a.b`` on a dict reads key ``b`` (``deal.company.title``); on text, lists and dicts it can
  only reach the whitelisted methods of :mod:`engine.sandbox_builtins`; anything else is an
  error. Reading a missing key or an attribute of ``None`` is an error naming the path — never
  a silent ``None`` that would misroute a process.
* calls reach only the whitelisted functions and methods; comprehensions are evaluated here
  (no frames, no generators escape).
* every evaluation is bounded by :class:`~engine.sandbox_lib.Limits`: steps, wall clock,
  string/list/int sizes (checked before allocating), syntax-tree depth and source length.

Numbers and decimal strings follow the rules documented in :mod:`engine.sandbox_lib`.
Every failure — refused syntax, unknown field, wrong type, limits — is a ``SandboxError``.
"""
from __future__ import annotations

import ast
import copy
import textwrap
import time
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .errors import SandboxError
from .sandbox_builtins import FUNCTIONS, find_method
from .sandbox_lib import Checker, Limits, binop, compare, short, truth, unary

__all__ = ["Limits", "Sandbox", "SandboxError"]

_EXPR_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Store, ast.Attribute, ast.Subscript,
    ast.Slice, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call,
    ast.keyword, ast.List, ast.Tuple, ast.Dict, ast.JoinedStr, ast.FormattedValue,
    ast.ListComp, ast.GeneratorExp, ast.comprehension,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.Not, ast.USub, ast.UAdd, ast.And, ast.Or,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
)
_STMT_NODES = (ast.Module, ast.Assign, ast.AugAssign, ast.If, ast.For, ast.While, ast.Break,
               ast.Continue, ast.Pass, ast.Expr)
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
        ast.Mod: "%", ast.Pow: "**", ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=",
        ast.Gt: ">", ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
        ast.IsNot: "is not", ast.Not: "not", ast.USub: "-", ast.UAdd: "+"}
_CONSTANT_TYPES = (str, int, float, bool, type(None))
_FORMAT_SPEC_CHARS = set("<>^=+- ,._0123456789sdfeEgG%")


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _check_tree(tree: ast.AST, mode: str, limits: Limits) -> None:
    allowed = _EXPR_NODES + (_STMT_NODES if mode == "exec" else ())

    def visit(node: ast.AST, depth: int) -> None:
        if depth > limits.max_depth:
            raise SandboxError("expression is nested too deeply")
        if not isinstance(node, allowed):
            raise SandboxError(f"'{type(node).__name__}' is not allowed here", line=_line(node))
        name = (node.id if isinstance(node, ast.Name) else node.attr if isinstance(
            node, ast.Attribute) else node.arg if isinstance(node, ast.keyword) else None)
        if isinstance(node, ast.keyword) and name is None:
            raise SandboxError("'**' arguments are not allowed", line=_line(node))
        if name is not None and name.startswith("_"):
            raise SandboxError(f"names starting with '_' are not allowed: {name}", line=_line(node))
        if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANT_TYPES):
            raise SandboxError(f"constant of type {type(node.value).__name__} is not allowed")
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Name | ast.Attribute):
            raise SandboxError("only named functions and methods may be called", line=_line(node))
        if isinstance(node, ast.comprehension) and node.is_async:
            raise SandboxError("async comprehensions are not allowed")
        for child in ast.iter_child_nodes(node):
            visit(child, depth + 1)

    visit(tree, 0)


def _line(node: ast.AST) -> int | None:
    return getattr(node, "lineno", None)


@lru_cache(maxsize=2048)
def _compile(source: str, mode: str, limits: Limits) -> ast.AST:
    if not isinstance(source, str):
        raise SandboxError("expression must be text")
    if len(source) > limits.max_source:
        raise SandboxError(f"source longer than {limits.max_source} characters")
    try:
        text = source.strip() if mode == "eval" else textwrap.dedent(source).strip("\n")
        tree = ast.parse(text, mode=mode)
    except SyntaxError as exc:
        raise SandboxError(f"syntax error: {exc.msg}", line=exc.lineno) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SandboxError(f"cannot parse: {type(exc).__name__}") from None
    _check_tree(tree, mode, limits)
    return tree


class Sandbox:
    """Checks and runs expressions (``evaluate``) and scripts (``execute``) over task data.

    Stateless apart from the bounded cache of checked syntax trees; safe to share.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def check(self, source: str, mode: str = "eval") -> None:
        """Raise ``SandboxError`` unless ``source`` is acceptable (used at deploy time)."""
        _compile(source, mode, self.limits)

    def evaluate(self, source: str, names: Mapping[str, Any]) -> Any:
        """The value of expression ``source`` with ``names`` (task data) in scope. Pure."""
        tree = _compile(source, "eval", self.limits)
        return _Interpreter(self.limits, names, mutating=False).run_eval(tree)

    def execute(self, source: str, names: Mapping[str, Any],
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run script ``source`` and return the names afterwards (top-level assignments added).

        The script runs on a deep copy, so ``names`` is untouched; a failing script changes
        nothing and the caller commits the result only on success.
        """
        tree = _compile(source, "exec", self.limits)
        scope = copy.deepcopy(dict(names))
        _Interpreter(self.limits, scope, extra=extra or {}, mutating=True).run_exec(tree)
        return scope


class _Interpreter:
    def __init__(self, limits: Limits, names: Any, *, extra: Mapping[str, Any] | None = None,
                 mutating: bool) -> None:
        self.limits = limits
        self.chk = Checker(limits)
        self.names = names
        self.extra = extra or {}
        self.locals: list[dict[str, Any]] = []
        self.mutating = mutating
        self.steps = 0
        self.deadline = time.monotonic() + limits.max_seconds

    # ---------------------------------------------------------- entry points
    def run_eval(self, tree: ast.AST) -> Any:
        return self._guard(lambda: self.eval(tree.body))  # type: ignore[attr-defined]

    def run_exec(self, tree: ast.AST) -> None:
        self._guard(lambda: self.block(tree.body))  # type: ignore[attr-defined]

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except SandboxError:
            raise
        except (_Break, _Continue):
            raise SandboxError("'break'/'continue' outside a loop") from None
        except RecursionError:
            raise SandboxError("expression is nested too deeply") from None
        except MemoryError:
            raise SandboxError("out of memory") from None
        except Exception as exc:  # any other failure of a whitelisted operation
            raise SandboxError(f"{type(exc).__name__}: {exc}") from None

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise SandboxError(f"too many steps (more than {self.limits.max_steps})")
        if self.steps % 256 == 0 and time.monotonic() > self.deadline:
            raise SandboxError(f"took longer than {self.limits.max_seconds} s")

    # ------------------------------------------------------------ statements
    def block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.stmt(stmt)

    def stmt(self, node: ast.stmt) -> None:
        self.tick()
        if isinstance(node, ast.Expr):
            self.eval(node.value)
        elif isinstance(node, ast.Assign):
            value = self.eval(node.value)
            for target in node.targets:
                self.assign(target, value)
        elif isinstance(node, ast.AugAssign):
            current = self.eval(node.target)  # a Store-context node reads the same way
            self.assign(node.target, binop(_OPS[type(node.op)], current, self.eval(node.value),
                                           self.chk))
        elif isinstance(node, ast.If):
            self.block(node.body if truth(self.eval(node.test)) else node.orelse)
        elif isinstance(node, ast.For):
            self.for_loop(node)
        elif isinstance(node, ast.While):
            self.while_loop(node)
        elif isinstance(node, ast.Break):
            raise _Break
        elif isinstance(node, ast.Continue):
            raise _Continue
        # ast.Pass: nothing

    def for_loop(self, node: ast.For) -> None:
        for item in list(self.chk.iterable(self.eval(node.iter))):
            self.tick()
            self.assign(node.target, item)
            try:
                self.block(node.body)
            except _Break:
                return
            except _Continue:
                continue
        self.block(node.orelse)

    def while_loop(self, node: ast.While) -> None:
        while truth(self.eval(node.test)):
            self.tick()
            try:
                self.block(node.body)
            except _Break:
                return
            except _Continue:
                continue
        self.block(node.orelse)

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            if target.id in FUNCTIONS:
                raise SandboxError(f"cannot assign to built-in name '{target.id}'")
            scope = self.locals[-1] if self.locals else self.names
            scope[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = list(self.chk.iterable(value))
            if len(items) != len(target.elts):
                raise SandboxError(f"cannot unpack {len(items)} values into {len(target.elts)}")
            for elt, item in zip(target.elts, items, strict=True):
                self.assign(elt, item)
        elif isinstance(target, ast.Subscript):
            obj = self.eval(target.value)
            if not self.mutating or not isinstance(obj, dict | list):
                raise SandboxError(f"cannot assign into {short(obj)}")
            key = self.eval(target.slice)
            if isinstance(obj, dict):
                self.chk.expect_len(len(obj) + 1, "items")
            obj[key] = value
        elif isinstance(target, ast.Attribute):
            obj = self.eval(target.value)
            if not self.mutating or not isinstance(obj, dict):
                raise SandboxError(f"cannot set '{target.attr}' on {short(obj)}")
            self.chk.expect_len(len(obj) + 1, "items")
            obj[target.attr] = value
        else:
            raise SandboxError(f"cannot assign to {type(target).__name__}")

    # ----------------------------------------------------------- expressions
    def eval(self, node: ast.expr) -> Any:
        self.tick()
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise SandboxError(f"'{type(node).__name__}' is not allowed here")
        result = handler(self, node)
        return self.chk.size(result) if type(node) in _PRODUCERS else result

    def e_constant(self, node: ast.Constant) -> Any:
        return node.value

    def e_name(self, node: ast.Name) -> Any:
        for scope in reversed(self.locals):
            if node.id in scope:
                return scope[node.id]
        if node.id in self.names:
            return self.names[node.id]
        if node.id in self.extra:
            return self.extra[node.id]
        if node.id in FUNCTIONS:
            return _Function(node.id)
        raise SandboxError(f"unknown name '{node.id}'")

    def e_attribute(self, node: ast.Attribute) -> Any:
        obj = self.eval(node.value)
        if isinstance(obj, dict) and node.attr in obj:
            return obj[node.attr]
        method = find_method(obj, node.attr, mutating=self.mutating)
        if method is not None:
            return _Method(obj, method)
        where = ast.unparse(node.value)
        if obj is None:
            raise SandboxError(f"'{where}' is empty, so it has no field '{node.attr}'")
        if isinstance(obj, dict):
            raise SandboxError(f"unknown field '{where}.{node.attr}'")
        raise SandboxError(f"{short(obj)} ('{where}') has no field '{node.attr}'")

    def e_subscript(self, node: ast.Subscript) -> Any:
        obj = self.eval(node.value)
        if isinstance(node.slice, ast.Slice):
            parts = [None if p is None else self.eval(p)
                     for p in (node.slice.lower, node.slice.upper, node.slice.step)]
            if not isinstance(obj, str | list | tuple):
                raise SandboxError(f"cannot slice {short(obj)}")
            if not all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts):
                raise SandboxError("slice bounds must be integers")
            return obj[slice(*parts)]
        key = self.eval(node.slice)
        if isinstance(obj, dict):
            if key not in obj:
                raise SandboxError(f"unknown field {ast.unparse(node)}")
            return obj[key]
        if isinstance(obj, str | list | tuple):
            if not isinstance(key, int) or isinstance(key, bool):
                raise SandboxError(f"index of {ast.unparse(node.value)} must be an integer")
            if not -len(obj) <= key < len(obj):
                raise SandboxError(f"index {key} out of range in {ast.unparse(node)}")
            return obj[key]
        raise SandboxError(f"cannot index {short(obj)} ('{ast.unparse(node.value)}')")

    def e_binop(self, node: ast.BinOp) -> Any:
        return binop(_OPS[type(node.op)], self.eval(node.left), self.eval(node.right), self.chk)

    def e_unaryop(self, node: ast.UnaryOp) -> Any:
        return unary(_OPS[type(node.op)], self.eval(node.operand))

    def e_boolop(self, node: ast.BoolOp) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.eval(operand)
            if isinstance(node.op, ast.And) != truth(value):
                return value
        return value

    def e_compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.eval(comparator)
            if not compare(_OPS[type(op)], left, right):
                return False
            left = right
        return True

    def e_ifexp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body if truth(self.eval(node.test)) else node.orelse)

    def e_call(self, node: ast.Call) -> Any:
        fn = self.eval(node.func)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise SandboxError("'*' arguments are not allowed")
        args = [self.eval(a) for a in node.args]
        kwargs = {k.arg: self.eval(k.value) for k in node.keywords if k.arg is not None}
        if isinstance(fn, _Function):
            return FUNCTIONS[fn.name](self.chk, *args, **kwargs)
        if isinstance(fn, _Method):
            return fn.impl(self.chk, fn.obj, *args, **kwargs)
        raise SandboxError(f"'{ast.unparse(node.func)}' is not a function")

    def e_list(self, node: ast.List) -> list[Any]:
        self.chk.expect_len(len(node.elts), "items")
        return [self.eval(e) for e in node.elts]

    def e_tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self.eval(e) for e in node.elts)

    def e_dict(self, node: ast.Dict) -> dict[Any, Any]:
        if any(k is None for k in node.keys):
            raise SandboxError("'**' in a dict is not allowed")
        out = {}
        for k, v in zip(node.keys, node.values, strict=True):
            key = self.eval(k)  # type: ignore[arg-type]
            if not isinstance(key, str | int | bool | type(None)):
                raise SandboxError(f"dict keys must be text or numbers, not {short(key)}")
            out[key] = self.eval(v)
        return out

    def e_joinedstr(self, node: ast.JoinedStr) -> str:
        parts = [self.eval(v) for v in node.values]
        self.chk.expect_len(sum(len(p) for p in parts), "str")
        return "".join(parts)

    def e_formattedvalue(self, node: ast.FormattedValue) -> str:
        value = self.eval(node.value)
        if not isinstance(value, str | int | float | bool | type(None) | list | tuple | dict
                          | Decimal):
            raise SandboxError(f"cannot format {short(value)}")
        if node.conversion == ord("r"):
            value = repr(value)
        elif node.conversion in (ord("s"), ord("a")):
            value = str(value)
        spec = self.eval(node.format_spec) if node.format_spec is not None else ""
        if not set(spec) <= _FORMAT_SPEC_CHARS or any(len(run) > 3 for run in _digit_runs(spec)):
            raise SandboxError(f"format spec '{spec}' is not allowed")
        return format(value, spec)

    def e_listcomp(self, node: ast.ListComp | ast.GeneratorExp) -> list[Any]:
        out: list[Any] = []
        self.locals.append({})
        try:
            self._comprehend(node.generators, 0, node.elt, out)
        finally:
            self.locals.pop()
        return out

    def _comprehend(self, gens: list[ast.comprehension], i: int, elt: ast.expr,
                    out: list[Any]) -> None:
        gen = gens[i]
        for item in list(self.chk.iterable(self.eval(gen.iter))):
            self.tick()
            self.assign(gen.target, item)
            if all(truth(self.eval(cond)) for cond in gen.ifs):
                if i + 1 < len(gens):
                    self._comprehend(gens, i + 1, elt, out)
                else:
                    self.chk.expect_len(len(out) + 1, "items")
                    out.append(self.eval(elt))


def _digit_runs(spec: str) -> list[str]:
    runs, cur = [], ""
    for ch in spec:
        if "0" <= ch <= "9":
            cur += ch
        elif cur:
            runs.append(cur)
            cur = ""
    return runs + ([cur] if cur else [])


class _Function:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Method:
    __slots__ = ("impl", "obj")

    def __init__(self, obj: Any, impl: Any) -> None:
        self.obj = obj
        self.impl = impl


_HANDLERS: dict[type, Any] = {
    ast.Constant: _Interpreter.e_constant, ast.Name: _Interpreter.e_name,
    ast.Attribute: _Interpreter.e_attribute, ast.Subscript: _Interpreter.e_subscript,
    ast.BinOp: _Interpreter.e_binop, ast.UnaryOp: _Interpreter.e_unaryop,
    ast.BoolOp: _Interpreter.e_boolop, ast.Compare: _Interpreter.e_compare,
    ast.IfExp: _Interpreter.e_ifexp, ast.Call: _Interpreter.e_call,
    ast.List: _Interpreter.e_list, ast.Tuple: _Interpreter.e_tuple,
    ast.Dict: _Interpreter.e_dict, ast.JoinedStr: _Interpreter.e_joinedstr,
    ast.FormattedValue: _Interpreter.e_formattedvalue, ast.ListComp: _Interpreter.e_listcomp,
    ast.GeneratorExp: _Interpreter.e_listcomp,
}
# Reading data is never size-checked (CRM text may be long); producing values always is.
_PRODUCERS = {ast.BinOp, ast.Call, ast.List, ast.Tuple, ast.Dict, ast.JoinedStr,
              ast.FormattedValue, ast.ListComp, ast.GeneratorExp}
