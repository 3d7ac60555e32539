"""Build the extension zips that users install: one per platform, each with the wheels of every dependency bundled.

    .venv/bin/python scripts/build_extension.py                 # = `make extension`: every platform -> dist/
    .venv/bin/python scripts/build_extension.py --platforms linux-x64 --pythons 3.11 --output-dir /tmp/out
    .venv/bin/python scripts/build_extension.py lock            # re-resolve requirements-extension.txt

Reproducibility: ``extension-lock.txt`` names, for every target (platform x Python), the exact wheel files of the
whole dependency closure with their SHA-256. ``lock`` writes it (pip's resolver, run once per target with that
target's platform tags *and* environment markers) together with the manifest's ``platforms``/``wheels`` lists; a build
reads only the lock, downloads exactly those files (``pip download --no-deps --require-hashes``; kept in a cache so a
second build needs no network), checks every hash, and stages the package in a temporary folder (only what Blender's
``[build] paths_exclude_pattern`` keeps, fixed file times) for Blender's own tool: ``blender_ext.py validate`` and
``build --split-platforms``, then ``validate`` again on every zip.

Targets: windows-x64, macos-arm64, macos-x64, linux-x64; CPython 3.11 (Blender 4.2 to 5.0) and 3.13 (Blender 5.1+).
A default build makes two zips per platform: ``movie_director-<v>-<platform>.zip`` with the wheels of both Pythons
(Blender 4.3 and newer, 5.1+ included: their installer picks each wheel by its Python tag) and
``...-<platform>-py311.zip`` for Blender 4.2 LTS to 5.0 (4.2.0's installer ignores Python tags; see MULTI_PYTHON_MIN).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-extension.txt"
LOCK = ROOT / "extension-lock.txt"
MANIFEST = ROOT / "blender_manifest.toml"
WHEELS_DIR = "wheels"  # relative to the package root, as Blender's manual advises

# The first Blender whose installer picks each wheel by its Python tag (bpy 4.3.0's bl_extension_ops.py does, 4.2.0's
# does not): the oldest Blender a zip bundling wheels for more than one Python can be installed in.
MULTI_PYTHON_MIN = "4.3.0"

# Every file in a zip gets this time (2024-01-01 00:00 UTC), so building twice from the same lock gives the same zip.
FIXED_MTIME = 1704067200


@dataclass(frozen=True)
class Platform:
    name: str  # Blender's platform name (the manifest's ``platforms`` and the zip's suffix)
    pip_platforms: tuple[str, ...]  # ``pip --platform`` tags, best first
    markers: tuple[tuple[str, str], ...]  # environment markers of that system, for resolving the closure
    marker_clause: str  # a PEP 508 clause that selects this platform (for the lock's requirement lines)


# Blender 4.2+ needs glibc 2.28 on Linux and macOS 11.2 on both Macs: wheels for anything newer would not load.
_MANYLINUX = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux_2_12_x86_64",
    "manylinux2010_x86_64",
    "manylinux_2_5_x86_64",
    "manylinux1_x86_64",
)

PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform(
            "windows-x64",
            ("win_amd64",),
            (
                ("sys_platform", "win32"),
                ("platform_system", "Windows"),
                ("os_name", "nt"),
                ("platform_machine", "AMD64"),
            ),
            'sys_platform == "win32"',
        ),
        Platform(
            "macos-arm64",
            ("macosx_11_0_arm64",),  # pip adds the older macOS tags itself
            (
                ("sys_platform", "darwin"),
                ("platform_system", "Darwin"),
                ("os_name", "posix"),
                ("platform_machine", "arm64"),
            ),
            'sys_platform == "darwin" and platform_machine == "arm64"',
        ),
        Platform(
            "macos-x64",
            ("macosx_11_0_x86_64",),  # ... down to macosx_10_9 and older
            (
                ("sys_platform", "darwin"),
                ("platform_system", "Darwin"),
                ("os_name", "posix"),
                ("platform_machine", "x86_64"),
            ),
            'sys_platform == "darwin" and platform_machine == "x86_64"',
        ),
        Platform(
            "linux-x64",
            _MANYLINUX,
            (
                ("sys_platform", "linux"),
                ("platform_system", "Linux"),
                ("os_name", "posix"),
                ("platform_machine", "x86_64"),
            ),
            'sys_platform == "linux"',
        ),
    )
}

#: CPython of each Blender series: 4.2 LTS to 5.0 ship 3.11, 5.1 moved to 3.13. The patch level only feeds
#: ``python_full_version`` markers (none in this closure).
PYTHONS: dict[str, str] = {"3.11": "3.11.9", "3.13": "3.13.9"}
BLENDER_SERIES = {"3.11": "Blender 4.2 to 5.0", "3.13": "Blender 5.1 and newer"}


@dataclass(frozen=True, order=True)
class Target:
    platform: str
    python: str

    def __str__(self) -> str:
        return f"{self.platform}/{self.python}"

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")


ALL_TARGETS = tuple(Target(p, v) for p in PLATFORMS for v in PYTHONS)


@dataclass
class LockedWheel:
    filename: str
    sha256: str
    name: str  # canonical distribution name
    version: str
    targets: set[Target] = field(default_factory=set)

    @property
    def pure(self) -> bool:
        return self.filename.endswith("-none-any.whl")


class BuildError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"build_extension: {message}", flush=True)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    if env := os.environ.get("MOVIE_DIRECTOR_WHEEL_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "movie_director" / "wheels"


# --------------------------------------------------------------------------------------------------------------------
# Blender's own tool


def blender_ext_tool() -> Path:
    """``blender_ext.py`` from the bpy wheel (or $BLENDER_EXT_TOOL), found without starting Blender."""
    if env := os.environ.get("BLENDER_EXT_TOOL"):
        return Path(env)
    spec = importlib.util.find_spec("bpy")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        found = sorted(Path(root).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    # The documented way, at the cost of starting Blender once.
    code = (
        "import os, bpy; print(os.path.join(bpy.utils.system_resource('SCRIPTS'), "
        "'addons_core/bl_pkg/cli/blender_ext.py'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False).stdout
    lines = out.strip().splitlines()
    if lines and Path(lines[-1]).is_file():
        return Path(lines[-1])
    raise BuildError("Blender's blender_ext.py was not found: install bpy (make setup) or set BLENDER_EXT_TOOL")


def load_blender_ext(tool: Path) -> ModuleType:
    """The tool as a module, for its path patterns and wheel-tag rules (it is plain Python, no bpy)."""
    spec = importlib.util.spec_from_file_location("_blender_ext_tool", tool)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Runs Blender's tool with its clock pinned to FIXED_MTIME (like SOURCE_DATE_EPOCH): the tool writes each zip's
# manifest with the time of day, and nothing else in it reads the clock.
_TOOL_WITH_FIXED_CLOCK = """
import runpy, sys, time
fixed = float(sys.argv[1])
time.time = lambda: fixed
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_tool(tool: Path, *args: str, verbose: bool = False) -> str:
    env = dict(os.environ, TZ="UTC")  # zip entry times are local time: make them the same everywhere
    cmd = [sys.executable, "-c", _TOOL_WITH_FIXED_CLOCK, str(FIXED_MTIME), str(tool), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    output = (proc.stdout + proc.stderr).strip()
    if verbose and output:
        print(output)
    if proc.returncode != 0:
        raise BuildError(f"blender_ext.py {args[0]} failed:\n{output}")
    return output


# --------------------------------------------------------------------------------------------------------------------
# The manifest


def manifest_block(platforms: Sequence[str], wheels: Sequence[str]) -> str:
    lines = ["platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]"]
    lines.append("# The bundled wheels: written by scripts/build_extension.py from extension-lock.txt, do not edit.")
    lines.append("wheels = [")
    lines.extend(f'  "./{WHEELS_DIR}/{w}",' for w in wheels)
    lines.append("]")
    return "\n".join(lines) + "\n"


def with_wheels(text: str, platforms: Sequence[str], wheels: Sequence[str]) -> str:
    """The manifest with its ``platforms`` and ``wheels`` lists replaced (inserted before the first table)."""
    text = re.sub(r"^platforms = \[[^\]]*\]\n", "", text, flags=re.MULTILINE)
    text = re.sub(r"^# The bundled wheels:[^\n]*\n", "", text, flags=re.MULTILINE)
    text = re.sub(r"^wheels = \[[^\]]*\]\n", "", text, flags=re.MULTILINE)
    match = re.search(r"^\[", text, flags=re.MULTILINE)
    at = match.start() if match else len(text)
    head = text[:at].rstrip("\n") + "\n"
    return head + manifest_block(platforms, wheels) + "\n" + text[at:]


def manifest_wheels(text: str) -> list[str]:
    import tomllib

    return [w.rsplit("/", 1)[-1] for w in tomllib.loads(text).get("wheels", [])]


# --------------------------------------------------------------------------------------------------------------------
# The lock


_WHEEL_LINE = re.compile(r"^\s*# wheel (\S+\.whl) sha256:([0-9a-f]{64}) for (.+)$")


def parse_lock(text: str) -> list[LockedWheel]:
    """Every wheel of the lock with the targets it is shipped for (from its ``# wheel`` lines)."""
    wheels: list[LockedWheel] = []
    for line in text.splitlines():
        match = _WHEEL_LINE.match(line)
        if not match:
            continue
        filename, digest, where = match.groups()
        targets = set(ALL_TARGETS) if where.strip() == "*" else set()
        if not targets:
            for item in where.split():
                platform, _, python = item.partition("/")
                if platform not in PLATFORMS or python not in PYTHONS:
                    raise BuildError(f"extension-lock.txt: unknown target {item!r} for {filename}")
                targets.add(Target(platform, python))
        name, version = filename.split("-")[:2]
        wheels.append(LockedWheel(filename, digest, canonical(name), version, targets))
    if not wheels:
        raise BuildError("extension-lock.txt lists no wheels: run `scripts/build_extension.py lock`")
    return wheels


def read_lock(path: Path = LOCK) -> list[LockedWheel]:
    if not path.is_file():
        raise BuildError(f"{path.name} is missing: run `scripts/build_extension.py lock`")
    return parse_lock(path.read_text())


def marker_for(targets: set[Target]) -> str:
    """A PEP 508 marker true exactly on ``targets`` (empty when that is every target)."""
    if targets == set(ALL_TARGETS):
        return ""
    platforms = sorted({t.platform for t in targets}, key=list(PLATFORMS).index)
    pythons = sorted({t.python for t in targets})
    clauses: list[str] = []
    if {Target(p, v) for p in platforms for v in pythons} == targets:  # a product: platforms x pythons
        if len(platforms) < len(PLATFORMS):
            if {"macos-arm64", "macos-x64"} <= set(platforms):
                platforms = [p for p in platforms if not p.startswith("macos")] + ["macos"]
            parts = ['sys_platform == "darwin"' if p == "macos" else PLATFORMS[p].marker_clause for p in platforms]
            clauses.append(parts[0] if len(parts) == 1 else "(" + " or ".join(f"({p})" for p in parts) + ")")
        if len(pythons) < len(PYTHONS):
            parts = [f'python_version == "{v}"' for v in pythons]
            clauses.append(parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")")
        return " and ".join(clauses)
    ors = [f'({PLATFORMS[t.platform].marker_clause} and python_version == "{t.python}")' for t in sorted(targets)]
    return " or ".join(ors)


def format_lock(wheels: Iterable[LockedWheel], top_level: Sequence[str]) -> str:
    by_release: dict[tuple[str, str], list[LockedWheel]] = {}
    for wheel in wheels:
        by_release.setdefault((wheel.name, wheel.version), []).append(wheel)
    out = [
        "# The exact wheels the Movie Director extension ships, for every platform and Python: the dependency closure",
        "# of requirements-extension.txt ("
        + ", ".join(dict.fromkeys(r.split(";")[0].split("==")[0].strip() for r in top_level))
        + ").",
        "# Generated by `.venv/bin/python scripts/build_extension.py lock`; do not edit. `make extension` downloads",
        "# exactly the files named on the `# wheel` lines and checks each one's SHA-256.",
        "# platforms: " + " ".join(PLATFORMS),
        "# pythons: " + " ".join(f"{v} ({BLENDER_SERIES[v]})" for v in PYTHONS),
        "# pip reads it too (markers pick a system's wheels), e.g. for Blender 4.2-5.0 on Linux:",
        "#   pip install --no-deps --require-hashes --only-binary=:all: -r extension-lock.txt",
        "",
    ]
    for (name, version), group in sorted(by_release.items()):
        group.sort(key=lambda w: w.filename)
        targets = set().union(*(w.targets for w in group))
        marker = marker_for(targets)
        head = f"{name}=={version}" + (f" ; {marker}" if marker else "")
        hashes = [f"    --hash=sha256:{w.sha256}" for w in group]
        out.append(" \\\n".join([head, *hashes]))
        for w in group:
            where = "*" if w.targets == set(ALL_TARGETS) else " ".join(str(t) for t in sorted(w.targets))
            out.append(f"    # wheel {w.filename} sha256:{w.sha256} for {where}")
    return "\n".join(out) + "\n"


def read_requirements(path: Path = REQUIREMENTS) -> list[str]:
    reqs = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            reqs.append(line)
    return reqs


# pip evaluates environment markers against the machine it runs on, even with --platform (so a Linux resolve would
# leave out `pywin32; sys_platform == "win32"`). This shim gives pip the target's marker environment.
_PIP_WITH_MARKERS = """
import json, sys
import pip._vendor.packaging.markers as markers
target = json.loads(sys.argv[1])
_default = markers.default_environment
def default_environment():
    env = _default()
    env.update(target)
    return env
markers.default_environment = default_environment
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def pip_target_args(target: Target) -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python, "--abi", target.abi]
    for tag in PLATFORMS[target.platform].pip_platforms:
        args += ["--platform", tag]
    return args


def marker_environment(target: Target) -> dict[str, str]:
    full = PYTHONS[target.python]
    env = dict(PLATFORMS[target.platform].markers)
    env.update(
        python_version=target.python,
        python_full_version=full,
        implementation_name="cpython",
        implementation_version=full,
        platform_python_implementation="CPython",
        platform_release="",
        platform_version="",
    )
    return env


def resolve(target: Target, requirements: Path, workdir: Path) -> list[tuple[str, str, str, str]]:
    """(name, version, wheel filename, sha256) of the closure for one target, from pip's resolver."""
    report = workdir / f"report-{target.platform}-{target.python}.json"
    cmd = [
        sys.executable,
        "-c",
        _PIP_WITH_MARKERS,
        json.dumps(marker_environment(target)),
        "install",
        "--isolated",  # the public index only, so the hashes are the ones every machine gets
        "--disable-pip-version-check",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--report",
        str(report),
        "--target",
        str(workdir / "never-written"),
        *pip_target_args(target),
        "-r",
        str(requirements),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"resolving for {target} failed:\n{proc.stdout}{proc.stderr}")
    data = json.loads(report.read_text())
    env = data.get("environment", {})
    if env.get("sys_platform") != dict(PLATFORMS[target.platform].markers)["sys_platform"]:
        raise BuildError(f"pip did not take the marker environment of {target}: {env}")
    closure = []
    for item in data["install"]:
        info = item["download_info"]
        filename = urllib.parse.unquote(info["url"].rsplit("/", 1)[-1])
        digest = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if not filename.endswith(".whl") or not digest:
            raise BuildError(f"{target}: {filename} is not a wheel with a known SHA-256")
        closure.append((canonical(item["metadata"]["name"]), item["metadata"]["version"], filename, digest))
    return closure


def lock(args: argparse.Namespace) -> int:
    top_level = read_requirements()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="md-lock-") as tmp,
        concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool,
    ):
        futures = {t: pool.submit(resolve, t, REQUIREMENTS, Path(tmp)) for t in ALL_TARGETS}
        closures = {t: f.result() for t, f in futures.items()}
    wheels: dict[str, LockedWheel] = {}
    for target, closure in closures.items():
        for name, version, filename, digest in closure:
            wheel = wheels.setdefault(filename, LockedWheel(filename, digest, name, version))
            if wheel.sha256 != digest:
                raise BuildError(f"{filename} has two different hashes on the index")
            wheel.targets.add(target)
    problems = check_lock(list(wheels.values()), load_blender_ext(blender_ext_tool()))
    if problems:
        raise BuildError("the resolved closure cannot be shipped:\n  " + "\n  ".join(problems))
    LOCK.write_text(format_lock(wheels.values(), top_level))
    text = MANIFEST.read_text()
    MANIFEST.write_text(with_wheels(text, list(PLATFORMS), sorted(wheels)))
    per_target = {t: len(c) for t, c in closures.items()}
    log(f"locked {len(wheels)} wheels in {time.monotonic() - started:.0f} s; per target: " + str(per_target))
    log(f"wrote {LOCK.name} and the wheels list of {MANIFEST.name}")
    return 0


def check_lock(wheels: Sequence[LockedWheel], blender_ext: ModuleType) -> list[str]:
    """What Blender would get wrong with these wheels: checked with the rules of Blender's own tool."""
    problems = []
    for target in ALL_TARGETS:
        names: dict[str, str] = {}
        for wheel in wheels:
            if target not in wheel.targets:
                continue
            if wheel.name in names:  # Blender installs one wheel per distribution name
                problems.append(f"{target}: two wheels of {wheel.name}: {names[wheel.name]}, {wheel.filename}")
            names[wheel.name] = wheel.filename
            platform_tag = wheel.filename[:-4].split("-")[-1]
            if platform_tag != "any":
                blender_platforms = set()
                for tag in platform_tag.split("."):
                    blender_platforms.update(blender_ext.blender_platforms_from_wheel_platform(tag))
                # (universal2 counts as both Macs, as Blender 4.3+ installs it; 4.2.0's installer skipped it.)
                if target.platform not in blender_platforms:
                    problems.append(f"{target}: {wheel.filename} is for {sorted(blender_platforms)}")
            versions = blender_ext.python_versions_from_wheel(wheel.filename)
            major, minor = (int(x) for x in target.python.split("."))
            if isinstance(versions, str) or not ((major,) in versions or (major, minor) in versions):
                problems.append(f"{target}: {wheel.filename} is not for Python {target.python} ({versions})")
    return problems


# --------------------------------------------------------------------------------------------------------------------
# Wheels: from the cache, or downloaded exactly as locked


def fetch_wheels(wheels: Sequence[LockedWheel], targets: Sequence[Target], cache: Path) -> dict[str, Path]:
    """Every wheel in the cache with its locked hash; downloads only what is missing (pure wheels once)."""
    cache.mkdir(parents=True, exist_ok=True)
    have: dict[str, Path] = {}
    for wheel in wheels:
        path = cache / wheel.filename
        if path.is_file() and sha256_of(path) == wheel.sha256:
            have[wheel.filename] = path
    missing = [w for w in wheels if w.filename not in have]
    if missing:
        log(f"downloading {len(missing)} of {len(wheels)} wheels into {cache}")
    for target in targets:
        todo = [w for w in missing if target in w.targets and w.filename not in have]
        if not todo:
            continue
        with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
            reqs = Path(tmp) / "requirements.txt"
            reqs.write_text("".join(f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in todo))
            dest = Path(tmp) / "wheels"
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                *pip_target_args(target),
                "--dest",
                str(dest),
                "-r",
                str(reqs),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise BuildError(
                    f"downloading the wheels for {target} failed (if the index changed a locked file, run "
                    f"`scripts/build_extension.py lock`):\n{proc.stdout}{proc.stderr}"
                )
            for wheel in todo:
                got = dest / wheel.filename
                if not got.is_file():
                    found = sorted(p.name for p in dest.glob("*.whl"))
                    raise BuildError(f"{target}: pip did not fetch {wheel.filename} (got {found})")
                if sha256_of(got) != wheel.sha256:
                    raise BuildError(f"{wheel.filename}: SHA-256 differs from extension-lock.txt")
                final = cache / wheel.filename
                os.replace(got, final)  # atomic: concurrent builds never see half a file
                have[wheel.filename] = final
    return have


# --------------------------------------------------------------------------------------------------------------------
# Staging and building


def build_patterns() -> list[str]:
    import tomllib

    data = tomllib.loads(MANIFEST.read_text())
    patterns = data.get("build", {}).get("paths_exclude_pattern")
    if not patterns:
        raise BuildError("blender_manifest.toml has no [build] paths_exclude_pattern")
    return list(patterns)


def package_files(blender_ext: ModuleType, root: Path = ROOT) -> list[str]:
    """The source files Blender's build puts in the zip (same filter, same rules: no symlinks, manifest aside)."""
    matcher = blender_ext.PathPatternMatch(build_patterns())
    files: list[str] = []

    def walk(folder: Path) -> None:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_symlink():
                continue
            rel = os.path.relpath(entry.path, root).replace(os.sep, "/")
            if entry.is_dir():
                if not matcher.test_path(rel + "/"):
                    walk(Path(entry.path))
            elif entry.is_file() and rel != "blender_manifest.toml" and not matcher.test_path(rel):
                files.append(rel)

    walk(root)
    return files


def stage(
    blender_ext: ModuleType, wheels: Sequence[LockedWheel], paths: dict[str, Path], platforms: Sequence[str], into: Path
) -> Path:
    source = into / "movie_director"
    source.mkdir(parents=True)
    for rel in package_files(blender_ext):
        dst = source / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, dst)
    (source / WHEELS_DIR).mkdir()
    for wheel in wheels:
        shutil.copyfile(paths[wheel.filename], source / WHEELS_DIR / wheel.filename)
    manifest = with_wheels(MANIFEST.read_text(), platforms, sorted(w.filename for w in wheels))
    pythons = {tag for w in wheels for tag in re.findall(r"-cp3(\d+)-cp3\d+-", w.filename)}
    if len(pythons) > 1:
        # Blender 4.2.0's installer ignores a wheel's Python tag and, of two builds of one release, installs the one
        # whose file name sorts last (cp313): the add-on then fails to load (checked with bpy 4.2.0). 4.3 picks by
        # Python. So a zip with several Pythons says so, and Blender 4.2 gets the -py311 zip instead.
        manifest = re.sub(
            r'^blender_version_min = "4\.2\.\d+"$', f'blender_version_min = "{MULTI_PYTHON_MIN}"', manifest, flags=re.M
        )
    (source / "blender_manifest.toml").write_text(manifest)
    for dirpath, _dirs, files in os.walk(source):
        for name in [*files, *_dirs, "."]:
            os.utime(os.path.join(dirpath, name), (FIXED_MTIME, FIXED_MTIME))
    return source


def pth_warnings(wheels: Sequence[LockedWheel], paths: dict[str, Path]) -> list[str]:
    """Wheels that rely on a ``.pth`` file: Blender adds its wheels' site-packages with ``sys.path.append`` and never
    processes ``.pth`` files, so whatever such a file sets up must be done by the add-on itself. The files that
    ``clients/site_paths.py`` runs (pywin32's, before ``mcp`` imports) are handled; any other is a warning."""
    import zipfile

    handled = set(_site_paths().NEEDED)
    found = []
    for wheel in wheels:
        with zipfile.ZipFile(paths[wheel.filename]) as zf:
            pth = [n for n in zf.namelist() if n.endswith(".pth") and "/" not in n and n not in handled]
        if pth:
            found.append(f"{wheel.filename} has {', '.join(pth)}, which Blender does not process")
    return found


def _site_paths() -> ModuleType:
    """clients/site_paths.py on its own (plain Python, no package import needed)."""
    spec = importlib.util.spec_from_file_location("md_site_paths", ROOT / "clients" / "site_paths.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sync_source_wheels(wheels: Sequence[LockedWheel], paths: dict[str, Path]) -> None:
    """``wheels/`` in the checkout holds exactly the locked wheels, so Blender's tool also works on the tree itself."""
    folder = ROOT / WHEELS_DIR
    folder.mkdir(exist_ok=True)
    wanted = {w.filename for w in wheels}
    for old in folder.glob("*.whl"):
        if old.name not in wanted:
            old.unlink()
    for wheel in wheels:
        dst = folder / wheel.filename
        if not dst.is_file() or dst.stat().st_size != paths[wheel.filename].stat().st_size:
            shutil.copyfile(paths[wheel.filename], dst)


@dataclass
class Built:
    platform: str
    path: Path
    size: int
    wheels: int


def build(
    platforms: Sequence[str],
    pythons: Sequence[str],
    output_dir: Path,
    cache: Path,
    *,
    verbose: bool = False,
    sync_tree: bool | None = None,
) -> list[Built]:
    """Build one zip per platform into ``output_dir``; returns what was built."""
    for p in platforms:
        if p not in PLATFORMS:
            raise BuildError(f"unknown platform {p!r}; choose from {', '.join(PLATFORMS)}")
    for v in pythons:
        if v not in PYTHONS:
            raise BuildError(f"unknown Python {v!r}; choose from {', '.join(PYTHONS)}")
    platforms = [p for p in PLATFORMS if p in platforms]
    targets = [Target(p, v) for p in platforms for v in sorted(set(pythons))]
    everything = set(targets) == set(ALL_TARGETS)
    locked = read_lock()
    tool = blender_ext_tool()
    blender_ext = load_blender_ext(tool)

    if everything and manifest_wheels(MANIFEST.read_text()) != sorted(w.filename for w in locked):
        log("the manifest's wheels list did not match extension-lock.txt: rewritten from the lock")
        MANIFEST.write_text(with_wheels(MANIFEST.read_text(), list(PLATFORMS), sorted(w.filename for w in locked)))
    run_tool(tool, "validate", str(ROOT), verbose=verbose)

    needed = [w for w in locked if w.targets & set(targets)]
    started = time.monotonic()
    paths = fetch_wheels(needed, targets, cache)
    log(f"{len(needed)} wheels ready in {time.monotonic() - started:.1f} s (cache: {cache})")
    for warning in pth_warnings(needed, paths):
        log(f"warning: {warning}")
    if sync_tree if sync_tree is not None else everything:
        sync_source_wheels(needed, paths)

    output_dir.mkdir(parents=True, exist_ok=True)
    suffix = "" if set(pythons) == set(PYTHONS) else "-" + "-".join(f"py{v.replace('.', '')}" for v in sorted(pythons))
    built: list[Built] = []
    for platform in platforms:
        # One staging per platform, holding exactly the lock's wheels for it: Blender's split alone would also put a
        # macOS universal2 wheel meant for Intel Macs into the Apple-silicon zip.
        mine = [w for w in needed if any(t.platform == platform for t in w.targets & set(targets))]
        with tempfile.TemporaryDirectory(prefix="md-extension-") as tmp:
            source = stage(blender_ext, mine, paths, [platform], Path(tmp))
            run_tool(tool, "validate", str(source), verbose=verbose)
            out = Path(tmp) / "out"
            out.mkdir()
            build_args = ("build", "--source-dir", str(source), "--output-dir", str(out), "--split-platforms")
            run_tool(tool, *build_args, verbose=verbose)
            zips = list(out.glob("*.zip"))
            if len(zips) != 1 or not zips[0].stem.endswith(platform.replace("-", "_")):
                raise BuildError(f"Blender's tool made {sorted(p.name for p in zips)} for {platform}")
            final = output_dir / (zips[0].stem + suffix + ".zip")
            shutil.move(str(zips[0]), final)
        run_tool(tool, "validate", str(final), verbose=verbose)
        built.append(Built(platform, final, final.stat().st_size, len(mine)))
    return built


def build_command(args: argparse.Namespace) -> int:
    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
    pythons = [v.strip() for v in args.pythons.split(",") if v.strip()]
    started = time.monotonic()
    output, cache = Path(args.output_dir).resolve(), Path(args.cache_dir)
    built = build(platforms, pythons, output, cache, verbose=args.verbose)
    if len(set(pythons)) > 1 and "3.11" in pythons and not args.no_blender42:
        # For Blender 4.2 LTS, which cannot install the zip above (see MULTI_PYTHON_MIN): the Python 3.11 wheels only.
        built += build(platforms, ["3.11"], output, cache, verbose=args.verbose, sync_tree=False)
    print(f"\n{'platform':<12} {'wheels':>6} {'size':>9}  zip")
    for b in built:
        print(f"{b.platform:<12} {b.wheels:>6} {b.size / 1e6:>7.1f} MB  {b.path}")
    seconds = time.monotonic() - started
    print(f"built {len(built)} zip(s) in {seconds:.1f} s, each validated with Blender's blender_ext.py")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=("build", "lock"), default="build")
    parser.add_argument("--platforms", default=",".join(PLATFORMS), help="comma separated (default: all four)")
    parser.add_argument(
        "--pythons",
        default=",".join(PYTHONS),
        help="CPython versions to bundle wheels for (default: 3.11,3.13 = Blender 4.2 and newer)",
    )
    parser.add_argument("--output-dir", default=str(ROOT / "dist"))
    parser.add_argument("--cache-dir", default=str(default_cache_dir()), help="downloaded wheels (kept between runs)")
    parser.add_argument("--verbose", action="store_true", help="show the output of Blender's tool")
    parser.add_argument(
        "--no-blender42", action="store_true", help="skip the extra -py311 zips that Blender 4.2 LTS needs"
    )
    args = parser.parse_args(argv)
    try:
        return lock(args) if args.command == "lock" else build_command(args)
    except BuildError as exc:
        print(f"build_extension: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
