"""The environment variable names a function's code reads, found by parsing it (no import, no execution).

Starting from the handler's module, the scan follows the imports that stay inside ``lambdas/`` (the function's own
package and ``core``: what its artifact holds) and collects every name read with ``env_str("X"…)``,
``env_int("X"…)``, ``os.environ["X"]``, ``os.environ.get("X"…)`` or ``os.getenv("X"…)``. A name given as a
module-level constant (``URL_SECRETS_ENV = "URL_SECRETS"``), also one imported from another scanned module, is
resolved, and so is a loop or comprehension variable running over literal names; a name passed in as a parameter is
the accessor itself (``env_int(name, …)`` in ``core.config``) and is not a read. Anything else is an
:class:`UnresolvedRead`, so a read the scan cannot name fails loudly instead of being skipped.

What counts is what the function can run: modules it never imports do not, and inside an imported module a read in a
function or method counts only when that function is referred to from the imported code (a method as
``Class.method``, ``self.method`` or ``cls.method``), so ``ArchiveLimits.from_env`` counts for the unzip functions
that call it, not for the text extractor that imports ``core.safe_zip`` for other things. A module's
``if __name__ == "__main__":`` block is the entry of a subprocess that the function's own code starts with an
environment it builds (the PDF worker's limits), so neither its reads nor its references count.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
ACCESSORS = {"env_str", "env_int"}
"""``core.config``'s accessors: the first argument is the variable's name."""


class UnresolvedRead(ValueError):
    """An environment read whose name is neither a literal nor a module-level constant."""


@dataclass(frozen=True, order=True)
class EnvRead:
    name: str
    module: str
    line: int

    def __str__(self) -> str:
        return f"{self.name} ({self.module}:{self.line})"


def module_path(module: str, root: Path = LAMBDAS) -> Path | None:
    """The source of ``a.b`` under ``root`` (``a/b.py`` or ``a/b/__init__.py``), or None when it is not ours."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every module ``module`` imports, anywhere in its body (a function-local import runs too)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}".strip(".") if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # ``from core import db``
    return found


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "literal"`` assignments."""
    constants = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = value.value
    return constants


def _imported_constants(tree: ast.Module, modules: dict[str, ast.Module]) -> dict[str, str]:
    """``from core.db import DATABASE_SECRET_ENV``: names bound to constants of other scanned modules."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in modules and not node.level:
            constants = _constants(modules[node.module])
            for alias in node.names:
                if alias.name in constants:
                    bound[alias.asname or alias.name] = constants[alias.name]
    return bound


def _is_os_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name) \
        and node.value.id == "os"


def _read_name_node(node: ast.AST) -> ast.expr | None:
    """The expression naming the variable, when ``node`` is an environment read."""
    if isinstance(node, ast.Subscript) and _is_os_environ(node.value) and isinstance(node.ctx, ast.Load):
        return node.slice
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name in ACCESSORS:
        return node.args[0]
    if isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault") and _is_os_environ(func.value):
        return node.args[0]
    if isinstance(func, ast.Attribute) and func.attr == "getenv" and isinstance(func.value, ast.Name) \
            and func.value.id == "os":
        return node.args[0]
    return None


def _check_environment_uses(module: str, tree: ast.Module) -> None:
    """UnresolvedRead for any use of the environment this scan does not read names from (``from os import
    getenv``, an alias of ``os.environ``, ``os.environ.items()``...), so that code the scan cannot follow fails the
    contract loudly instead of being skipped. Copying the whole environment for a subprocess is not a read."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os" and \
                {a.name for a in node.names} & {"environ", "environb", "getenv", "getenvb"}:
            raise UnresolvedRead(f"{module}:{node.lineno}: import os and read os.environ / os.getenv, which the "
                                 "environment contract scan follows")
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr) and _is_os_environ(child) and not _supported_environment_use(node, child):
                raise UnresolvedRead(f"{module}:{child.lineno}: {ast.unparse(node)[:80]} uses os.environ in a way "
                                     "the environment contract scan cannot name; read os.environ[NAME], "
                                     "os.environ.get(NAME) or env_str/env_int(NAME)")


def _supported_environment_use(parent: ast.AST, environ: ast.expr) -> bool:
    if isinstance(parent, ast.Subscript) and parent.value is environ:
        return True  # os.environ[NAME] (a read, or a write the scan need not name)
    if isinstance(parent, ast.Attribute) and parent.attr in ("get", "setdefault", "copy"):
        return True  # .get / .setdefault are reads; .copy() hands the whole environment on
    return isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "dict" \
        and parent.args == [environ]  # dict(os.environ): the whole environment, for a subprocess


def _is_main_block(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__" and \
        any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)


def _literal_names(node: ast.expr) -> tuple[str, ...] | None:
    if isinstance(node, ast.Tuple | ast.List | ast.Set) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return tuple(str(e.value) for e in node.elts)  # type: ignore[attr-defined]
    return None


def _aliases(tree: ast.Module, modules: dict[str, ast.Module]) -> dict[str, str]:
    """Names bound by imports: -> ``"module:"`` for a scanned module, ``"module:symbol"`` for a symbol of one, and
    ``""`` for anything outside ``lambdas/`` (a library: its calls are not ours to follow)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name if alias.asname else alias.name.split(".")[0]
                bound[alias.asname or target] = f"{target}:" if target in modules else ""
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                bound[alias.asname or alias.name] = (f"{full}:" if full in modules else
                                                     f"{node.module}:{alias.name}" if node.module in modules else "")
    return bound


def _refer(node: ast.AST, module: str, aliases: dict[str, str], found: set[str], *, into_defs: bool) -> None:
    """Add what ``node`` refers to: ``module:function`` for a module-level function, ``Class.method`` for a method
    named through its class, ``*.method`` for one called on an instance. ``into_defs`` False: the bodies of
    functions are not entered (module-level code runs on import, function bodies only when called)."""
    if _is_main_block(node):
        return
    if not into_defs and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        for expression in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if expression is not None:
                _refer(expression, module, aliases, found, into_defs=into_defs)
        return
    if isinstance(node, ast.Name):
        target = aliases.get(node.id)
        found.add(f"{module}:{node.id}" if target is None else target)
    elif isinstance(node, ast.Attribute):
        root = node.value
        while isinstance(root, ast.Attribute):
            root = root.value
        target = aliases.get(root.id) if isinstance(root, ast.Name) else None
        if target == "":
            pass  # a library's attribute
        elif target and target.endswith(":") and root is node.value:
            found.add(f"{target}{node.attr}")
        elif isinstance(node.value, ast.Name) and node.value.id[:1].isupper():
            found.add(f"{node.value.id}.{node.attr}")
        else:
            found.add(f"*.{node.attr}")
    for child in ast.iter_child_nodes(node):
        _refer(child, module, aliases, found, into_defs=into_defs)


Definition = tuple[str, str | None, str]
"""(module, class or None, function name)."""


def reachable(modules: dict[str, ast.Module], entry: Definition) -> set[Definition]:
    """The functions and methods the function can run: from the handler and every module's import-time code,
    following references until nothing new is reached."""
    aliases = {module: _aliases(tree, modules) for module, tree in modules.items()}
    definitions: dict[Definition, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    referenced: set[str] = {f"{entry[0]}:{entry[2]}"}
    for module, tree in modules.items():
        _refer(tree, module, aliases[module], referenced, into_defs=False)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                definitions[module, None, node.name] = node
            elif isinstance(node, ast.ClassDef):
                definitions.update({(module, node.name, child.name): child for child in node.body
                                    if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)})
    reached: set[Definition] = set()
    while True:
        new = {d for d in definitions if d not in reached and _reachable(d, referenced)}
        if not new:
            return reached
        reached |= new
        for module, _, name in new:
            for statement in definitions[module, _, name].body:
                _refer(statement, module, aliases[module], referenced, into_defs=True)


def _reachable(definition: Definition, referenced: set[str]) -> bool:
    module, owner, name = definition
    if owner is None:
        return f"{module}:{name}" in referenced
    return f"{owner}.{name}" in referenced or f"*.{name}" in referenced


def _reads(module: str, tree: ast.Module, modules: dict[str, ast.Module], runs: set[Definition]) -> list[EnvRead]:
    constants = _constants(tree) | _imported_constants(tree, modules)
    top_level = set(tree.body)
    reads: list[EnvRead] = []

    def resolve(expression: ast.expr, bound: dict[str, tuple[str, ...] | None]) -> tuple[str, ...] | None:
        """The names ``expression`` stands for; None for a parameter (an accessor's own argument)."""
        if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
            return (expression.value,)
        if isinstance(expression, ast.Name) and expression.id in bound:
            return bound[expression.id]
        if isinstance(expression, ast.Name) and expression.id in constants:
            return (constants[expression.id],)
        if isinstance(expression, ast.Attribute) and isinstance(expression.value, ast.Name):
            attribute = _attribute_constants(tree, expression.value.id, modules)
            if expression.attr in attribute:
                return (attribute[expression.attr],)
        raise UnresolvedRead(f"{module}:{expression.lineno}: environment read of {ast.unparse(expression)} "
                             "is neither a literal nor a module-level constant")

    def visit(node: ast.AST, bound: dict[str, tuple[str, ...] | None], owner: str | None) -> None:
        if _is_main_block(node):
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if (owner is not None or node in top_level) and (module, owner, node.name) not in runs:
                return
            arguments = node.args
            parameters = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
            bound = {**bound, **dict.fromkeys(parameters)}
            owner = None
        elif isinstance(node, ast.ClassDef):
            for child in node.body:
                visit(child, bound, node.name)
            return
        elif isinstance(node, ast.comprehension | ast.For) and isinstance(node.target, ast.Name):
            loop_names = _literal_names(node.iter)
            if loop_names is not None:
                bound = {**bound, node.target.id: loop_names}
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            for generator in node.generators:  # bind the loop variables before visiting the element
                visit(generator, bound, owner)
                loop_names = _literal_names(generator.iter)
                if isinstance(generator.target, ast.Name) and loop_names is not None:
                    bound = {**bound, generator.target.id: loop_names}
            for element in ast.iter_child_nodes(node):
                if not isinstance(element, ast.comprehension):
                    visit(element, bound, owner)
            return
        expression = _read_name_node(node)
        if expression is not None:
            read_names = resolve(expression, bound)
            reads.extend(EnvRead(name, module, expression.lineno) for name in read_names or ())
        for inner in ast.iter_child_nodes(node):
            visit(inner, bound, owner)

    visit(tree, {}, None)
    return reads


def _attribute_constants(tree: ast.Module, alias: str, modules: dict[str, ast.Module]) -> dict[str, str]:
    """Constants of the scanned module bound to ``alias`` (``from core import db`` → ``db.X``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for name in node.names:
                full = f"{node.module}.{name.name}"
                if (name.asname or name.name) == alias and full in modules:
                    return _constants(modules[full])
        elif isinstance(node, ast.Import):
            for name in node.names:
                if (name.asname or name.name) == alias and name.name in modules:
                    return _constants(modules[name.name])
    return {}


def imported_modules(entry: str, root: Path = LAMBDAS) -> dict[str, ast.Module]:
    """``entry`` and every module under ``root`` it imports, transitively: name -> parsed source."""
    modules: dict[str, ast.Module] = {}
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in modules:
            continue
        path = module_path(name, root)
        if path is None:
            continue
        modules[name] = tree = ast.parse(path.read_text(), str(path))
        _check_environment_uses(name, tree)
        pending += sorted(_imports(tree, name, path.name == "__init__.py") - set(modules))
        parent = name.rpartition(".")[0]
        if parent:  # importing a.b runs a/__init__.py first
            pending.append(parent)
    return modules


@functools.cache
def environment_reads(handler: str, root: Path = LAMBDAS) -> tuple[EnvRead, ...]:
    """Every environment read of the code a function with handler ``pkg.module.function`` can run (cached: the
    sources do not change during a run)."""
    module, entry = handler.rsplit(".", 1)
    modules = imported_modules(module, root)
    runs = reachable(modules, (module, None, entry))
    return tuple(sorted({read for name, tree in modules.items() for read in _reads(name, tree, modules, runs)}))
