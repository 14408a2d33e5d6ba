"""`xinf fixtures`: the large generated datasets, kept as recipes and hashes.

A dataset of a million rows is too big for the repository, but it is a pure
function of its `xinf gen-fixture` arguments. fixtures/recipes.toml keeps, per
named dataset, those arguments plus the SHA-256 of each generated input file
([NAME.inputs]) and of each file `xinf pipeline st` writes for it
([NAME.outputs], every file but perf.txt, which holds timings).

    xinf fixtures list                  the recipes, and what is recorded / generated
    xinf fixtures gen [NAME] [--force]  generate into fixtures/generated/NAME (gitignored)
                                        and check the input hashes; skipped when the
                                        files there already match, unless --force
    xinf fixtures check [NAME]          generate if missing, run the ST pipeline into a
                                        temp dir, compare every output hash; exit 1 on
                                        any difference
    xinf fixtures record [NAME] [--force]
                                        regenerate, run, and write both hash tables;
                                        refuses to replace recorded hashes without --force

Without NAME, gen/check/record do every recipe in file order. Hashes are only
ever written by `record`, so a changed hash is always a visible, reviewed diff.
The file is read with tomllib and written by the small writer below (the
standard library has no TOML writer); the writer keeps the file's layout
stable so that a record shows as a minimal diff.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib
import re
import sys
import tempfile
import time
import tomllib

from xinfinity.runtime import progress

from . import gen_fixture

ROOT = pathlib.Path(__file__).resolve().parent.parent
RECIPES_FILE = ROOT / "fixtures" / "recipes.toml"
GENERATED_DIR = ROOT / "fixtures" / "generated"
INPUT_FILES = ("orders.csv", "balances_init.csv", "assets_config.csv", "symbols_config.csv")
UNHASHED_OUTPUTS = ("perf.txt",)

HEADER = """\
# Large generated datasets, kept as their `xinf gen-fixture` recipe plus the
# SHA-256 of each generated input file ([NAME.inputs]) and of each file that
# `xinf pipeline st` writes for it ([NAME.outputs], perf.txt excepted).
#
#   xinf fixtures gen NAME      generate into fixtures/generated/NAME, check inputs
#   xinf fixtures check NAME    run the ST pipeline, compare every output hash
#   xinf fixtures record NAME   write the hashes (--force to replace recorded ones)
#
# Written by tools/recipes.py: edit the args by hand if you like, but let
# `record` write the hashes.
"""


class RecipeError(Exception):
    """A problem the user must fix; main() prints it and exits 2."""


@dataclasses.dataclass
class Recipe:
    name: str
    description: str
    params: gen_fixture.GenParams
    dust: str = "release"
    inputs: dict[str, str] = dataclasses.field(default_factory=dict)
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_toml(self) -> dict:
        defaults = gen_fixture.GenParams()
        args = {f.name: getattr(self.params, f.name) for f in dataclasses.fields(self.params)
                if f.name in ("orders", "cancel_ratio", "users", "seed", "symbols", "balance")
                or getattr(self.params, f.name) != getattr(defaults, f.name)}
        return {"description": self.description, "dust": self.dust, "args": args,
                "inputs": dict(sorted(self.inputs.items())),
                "outputs": dict(sorted(self.outputs.items()))}


# -- a tiny TOML writer ------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v!r} to TOML")
        return repr(v)                      # shortest round-tripping form, e.g. 0.3
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)   # a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(data: dict, header: str = "") -> str:
    """TOML text for nested dicts of str/int/float/bool/list; tables after plain keys."""
    out = [header] if header else []

    def table(path: list[str], d: dict) -> None:
        plain = [(k, v) for k, v in d.items() if not isinstance(v, dict)]
        subs = [(k, v) for k, v in d.items() if isinstance(v, dict)]
        if path:
            out.append(("\n" if out else "") + "[" + ".".join(_key(p) for p in path) + "]\n")
        for k, v in plain:
            out.append(f"{_key(k)} = {_value(v)}\n")
        for k, v in subs:
            table(path + [k], v)

    table([], data)
    return "".join(out)


# -- recipes file ------------------------------------------------------------------

def load_recipes(path: pathlib.Path = RECIPES_FILE) -> dict[str, Recipe]:
    try:
        raw = tomllib.loads(pathlib.Path(path).read_text())
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipes file") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: {e}") from None
    fields = {f.name for f in dataclasses.fields(gen_fixture.GenParams)}
    recipes = {}
    for name, body in raw.items():
        args = dict(body.get("args", {}))
        unknown = set(args) - fields
        if unknown:
            raise RecipeError(f"{path}: recipe {name}: unknown args {sorted(unknown)}")
        params = gen_fixture.GenParams(**args)
        try:
            params.validate()
        except ValueError as e:
            raise RecipeError(f"{path}: recipe {name}: {e}") from None
        recipes[name] = Recipe(name=name, description=body.get("description", ""), params=params,
                               dust=body.get("dust", "release"),
                               inputs=dict(body.get("inputs", {})),
                               outputs=dict(body.get("outputs", {})))
    return recipes


def save_recipes(recipes: dict[str, Recipe], path: pathlib.Path = RECIPES_FILE) -> None:
    text = dumps_toml({name: r.to_toml() for name, r in recipes.items()}, HEADER)
    assert tomllib.loads(text).keys() == recipes.keys()
    tmp = pathlib.Path(path).with_suffix(".toml.tmp")
    tmp.write_text(text)
    tmp.replace(path)


# -- hashing and comparing -----------------------------------------------------------

def sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def hash_inputs(data_dir: pathlib.Path) -> dict[str, str]:
    progress.current().stage("hashing the inputs")
    return {name: sha256_file(data_dir / name) for name in INPUT_FILES}


def hash_outputs(out_dir: pathlib.Path) -> dict[str, str]:
    progress.current().stage("hashing the outputs")
    return {p.name: sha256_file(p) for p in sorted(out_dir.iterdir())
            if p.is_file() and p.name not in UNHASHED_OUTPUTS}


def compare(expected: dict[str, str], actual: dict[str, str], label: str) -> bool:
    """Print a verdict per file; True when every file matches."""
    same = True
    for name in sorted(set(expected) | set(actual)):
        want, got = expected.get(name), actual.get(name)
        if want == got:
            verdict = f"ok        {got[:16]}"
        elif got is None:
            verdict = "MISSING   (in the recipe, not produced)"
        elif want is None:
            verdict = f"UNEXPECTED {got[:16]} (produced, not in the recipe)"
        else:
            verdict = f"DIFFERENT expected {want[:16]}, got {got[:16]}"
        same &= want == got
        print(f"  {label:7} {name:28} {verdict}")
    return same


# -- actions ---------------------------------------------------------------------

def _run_st():
    """The ST pipeline's run_st, or a RecipeError saying it is not available."""
    try:
        from xinfinity.app.st import run_st
    except Exception as e:   # not written yet, or broken: say so plainly
        raise RecipeError("the ST pipeline (xinfinity.app.st.run_st) is not available: "
                          f"{type(e).__name__}: {e}") from None
    return run_st


def _dataset_complete(data_dir: pathlib.Path) -> bool:
    return all((data_dir / name).is_file() for name in INPUT_FILES)


def generate_dataset(p: gen_fixture.GenParams, out_dir) -> dict:
    """gen_fixture.generate, saying how far it got (runtime/progress.py, on stderr): drawing the
    rows, then writing orders.csv (n of N rows). Its rich bar (gen_fixture.run_with_progress) showed
    on a terminal only; these lines show wherever stderr goes."""
    prog = progress.current()
    prog.stage("drawing the rows", compiles="gen")

    def advance(n: int) -> None:
        if prog.total is None:      # the first chunk is written: the rate counts from here
            prog.stage("writing orders.csv", total=p.orders, unit="rows", done=n, per_s=True)
        else:
            prog.update(add=n)

    return gen_fixture.generate(p, out_dir, advance)


def gen_fixture_main(args) -> int:
    """`xinf gen-fixture`: gen_fixture.main, with progress lines (an edit of gen_fixture.py, which
    holds kernels, would recompile every kernel of the tree)."""
    p = gen_fixture.params_from_args(args)
    try:
        p.validate()
    except ValueError as e:
        print(f"gen-fixture: {e}", file=sys.stderr)
        return 2
    with progress.task(enabled=not args.quiet):
        r = generate_dataset(p, args.out)
    print(gen_fixture.summary_line(p, args.out, r))
    return 0


def generate(r: Recipe, data_dir: pathlib.Path, quiet: bool) -> None:
    for name in INPUT_FILES:             # only what the generator writes; nothing else
        (data_dir / name).unlink(missing_ok=True)
    with progress.task(enabled=not quiet):
        result = generate_dataset(r.params, data_dir)
    print(gen_fixture.summary_line(r.params, data_dir, result))


def do_gen(r: Recipe, data_dir: pathlib.Path, force: bool, quiet: bool) -> bool:
    if (not force and r.inputs and _dataset_complete(data_dir)
            and hash_inputs(data_dir) == r.inputs):
        print(f"{r.name}: {data_dir} is up to date")
        return True
    generate(r, data_dir, quiet)
    if not r.inputs:
        print(f"{r.name}: no input hashes recorded yet (xinf fixtures record {r.name})")
        return True
    ok = compare(r.inputs, hash_inputs(data_dir), "input")
    print(f"{r.name}: inputs {'match the recipe' if ok else 'DIFFER from the recipe'}")
    return ok


def _run_outputs(r: Recipe, data_dir: pathlib.Path, run_st) -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix=f"xinf-{r.name}-") as tmp:
        t0 = time.perf_counter()
        run_st(data_dir, tmp, dust=r.dust)
        print(f"{r.name}: ST pipeline ran in {time.perf_counter() - t0:.1f} s")
        return hash_outputs(pathlib.Path(tmp))


def do_check(r: Recipe, data_dir: pathlib.Path, quiet: bool) -> bool:
    run_st = _run_st()
    if not r.outputs:
        raise RecipeError(f"{r.name}: no output hashes recorded (xinf fixtures record {r.name})")
    if not _dataset_complete(data_dir):
        generate(r, data_dir, quiet)
    ok = True
    if r.inputs:
        ok = compare(r.inputs, hash_inputs(data_dir), "input")
        if not ok:
            print(f"{r.name}: the generated inputs differ from the recipe "
                  f"(regenerate with `xinf fixtures gen {r.name} --force`)")
            return False
    ok = compare(r.outputs, _run_outputs(r, data_dir, run_st), "output") and ok
    print(f"{r.name}: {'OK, every output matches' if ok else 'FAILED, outputs differ'}")
    return ok


def do_record(r: Recipe, data_dir: pathlib.Path, force: bool, quiet: bool) -> bool:
    run_st = _run_st()
    if (r.inputs or r.outputs) and not force:
        raise RecipeError(f"{r.name}: hashes are already recorded; use --force to replace them")
    generate(r, data_dir, quiet)
    r.inputs = hash_inputs(data_dir)
    r.outputs = _run_outputs(r, data_dir, run_st)
    for label, hashes in (("input", r.inputs), ("output", r.outputs)):
        for name, digest in sorted(hashes.items()):
            print(f"  {label:7} {name:28} recorded  {digest[:16]}")
    return True


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["list", "gen", "check", "record"])
    parser.add_argument("name", nargs="?", help="recipe name (default: all)")
    parser.add_argument("--force", action="store_true",
                        help="gen: regenerate even if up to date; record: replace recorded hashes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines (stderr)")
    parser.add_argument("--recipes", default=str(RECIPES_FILE),
                        help="recipes file (default fixtures/recipes.toml)")
    parser.add_argument("--dir", default=str(GENERATED_DIR),
                        help="where generated datasets go (default fixtures/generated)")


def _list(recipes: dict[str, Recipe], root: pathlib.Path) -> None:
    for r in recipes.values():
        c = r.params.counts()
        state = "recorded" if r.inputs and r.outputs else ("inputs only" if r.inputs else "not recorded")
        here = "generated" if _dataset_complete(root / r.name) else "not generated"
        print(f"{r.name:16} {c['rows']:>9} rows  {state:12}  {here:13}  {r.description}")


def main(args) -> int:
    path, root = pathlib.Path(args.recipes), pathlib.Path(args.dir)
    try:
        recipes = load_recipes(path)
        if args.action == "list":
            _list(recipes, root)
            return 0
        if args.name is not None and args.name not in recipes:
            raise RecipeError(f"unknown recipe {args.name!r} (known: {', '.join(recipes)})")
        names = [args.name] if args.name else list(recipes)
        ok = True
        with progress.task(enabled=not args.quiet) as prog:
            for i, name in enumerate(names):
                prog.context = f"{name} ({i + 1} of {len(names)})"
                r, data_dir = recipes[name], root / name
                if args.action == "gen":
                    ok &= do_gen(r, data_dir, args.force, args.quiet)
                elif args.action == "check":
                    ok &= do_check(r, data_dir, args.quiet)
                else:
                    do_record(r, data_dir, args.force, args.quiet)
                    save_recipes(recipes, path)
                    print(f"{name}: recorded {len(r.inputs)} input and {len(r.outputs)} output hashes "
                          f"in {path}")
        return 0 if ok else 1
    except RecipeError as e:
        print(f"xinf fixtures: {e}", file=sys.stderr)
        return 2
