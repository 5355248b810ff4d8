"""The frame phase compiled ahead of time and kept on disk, so that a later process loads it instead of tracing
and compiling it again (issue 11).

`torch.compile(KokoroNetwork.render, dynamic=True, fullgraph=True).aot_compile(example)` traces the frame phase
once, at an example shape, into a graph with symbolic sizes plus the guards that say which inputs it serves. The
network is passed as an argument, so its weights are graph inputs: an artifact holds code, not weights. Two graphs
serve every batch: one row (the compilers specialize a size of 1) and several rows, short or long (see
`FrameGraphs._compile` for what keeps inductor from splitting short and long). Each graph is one file in
`<compile cache>/frame-phase/<key>/`; the key names everything the compiled code depends on (torch, Python, our
model code, the network's parameter shapes, device, dtype). A later process loads every file of its key (no
tracing: seconds) and each call runs the first graph whose guards accept its inputs; inputs that no graph accepts
compile one more graph, which is saved beside the others.

A file that cannot be loaded (damaged, or written by an incompatible torch) is deleted with a `CompileCacheWarning`
and its graph compiled again when needed; nothing ever falls back to eager silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import interrupts
from .files import atomic_write
from .model import KokoroNetwork

FORMAT = 1
"""Version of the artifact files' layout (and of how they are traced); part of the key."""


SIZE_OBLIVIOUS = {"cpu": True}
"""Devices whose graphs are traced with torch's backed_size_oblivious (see `FrameGraphs._compile`). Not CUDA: there,
torch 2.11's Triton code generation failed on the frame phase traced that way (`CantSplit: 512*s77 not divisible by
512*s53*s77`, H100, 2026-11-26), and the CPU-code guard it removes does not exist."""


CHANNELS_LAST = {"cuda": False}
"""Devices whose graphs are compiled with inductor's layout optimization forced on (inductor's own heuristic turns it
off for graphs with symbolic sizes): every convolution of the frame phase (2-D on CUDA: `model.layers.Conv1d`) and
the fused kernels between them channels-last, so cuDNN gets NHWC as it wants it instead of transposing each input
and output. Off until measured whole: on an H200 (2026-11-27, benchmarks/RESULTS.md) it took the GPU time of the
compiled graph without CUDA graphs from 106.5 to 87.7 ms per 132 s of audio and its wall time from 0.158 to 0.142 s,
but the first CUDA-graphed pass took 0.70 s instead of 0.35 s and the cached warm-up 42 s instead of 22 s."""


CUDA_GUARD_THREADS = 1
"""Torch's CPU thread count while CUDA graphs are compiled, loaded, checked and run. Compiled graphs guard on the
thread count (torch 2.11-2.13), which says nothing about CUDA kernels: without a fixed value, a process with
another count (the tests set 2, a 16-core benchmark 16) rejected saved graphs and compiled for minutes again."""


class CompileCacheWarning(UserWarning):
    """A compiled-graph file could not be used (it is deleted and its graph compiled again)."""


def _torch_default_cache_dir() -> str:
    """The directory inductor uses when nobody chose one (it writes it into TORCHINDUCTOR_CACHE_DIR once imported)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # older torch: the same rule
        import getpass
        import tempfile

        return os.path.join(tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")
    return default_cache_dir()


def compile_cache_dir() -> str:
    """Where torch.compile keeps compiled code across processes: $TORCHINDUCTOR_CACHE_DIR if the user set it, else
    `<voicegen cache>/torch-compile`, which is set as TORCHINDUCTOR_CACHE_DIR for this process. (Importing torch's
    compiler fills the variable with its own default, /tmp/torchinductor_<user>: that value counts as unset.)"""
    from .weights import cache_dir

    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not chosen or os.path.abspath(chosen) == os.path.abspath(_torch_default_cache_dir()):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir() / "torch-compile")
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


def _code_digest() -> str:
    """sha256 of the source the frame phase is traced from (voicegen/model/**.py) and of this module."""
    digest = hashlib.sha256()
    model_dir = Path(__file__).parent / "model"
    for path in sorted(model_dir.rglob("*.py")) + [Path(__file__)]:
        digest.update(str(path.relative_to(model_dir.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cpu_isa() -> str:
    """The machine and the vector instruction sets compiled CPU code may use (torch's own detection, instant):
    code built for one does not run on a CPU without them (a cache shared between machines)."""
    import platform

    flags = [name[4:-10] for name in sorted(dir(torch.cpu)) if name.startswith("_is_") and name.endswith("_supported")
             and getattr(torch.cpu, name)()]  # e.g. avx2, avx512, vnni, amx_tile
    return " ".join([platform.machine(), torch.backends.cpu.get_cpu_capability(), *flags])


def artifact_key(network: KokoroNetwork, device: torch.device, dtype: torch.dtype | None) -> str:
    """What compiled frame-phase code depends on, hashed: torch and Python versions, our model code, the network's
    parameter names, shapes and dtypes (the weights' values are graph inputs: not part of the code), the device
    (the GPU model, or the CPU's instruction set), the autocast dtype and the layout (CHANNELS_LAST)."""
    device = torch.device(device)
    parts = {
        "format": FORMAT,
        "torch": torch.__version__,
        "python": list(sys.version_info[:2]),
        "code": _code_digest(),
        "params": [[name, list(p.shape), str(p.dtype)] for name, p in network.state_dict().items()],
        "device": device.type,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": _cpu_isa() if device.type == "cpu" else None,
        "dtype": str(dtype),
        "channels_last": CHANNELS_LAST.get(device.type, False),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


@dataclass
class GraphLoad:
    """What `FrameGraphs.load` found: graphs loaded, seconds, and the files it could not use (deleted)."""

    loaded: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)


class GraphLimit(RuntimeError):
    """The inputs need a graph beyond the allowed number (see `FrameGraphs.__call__`)."""


class CompileFailed(RuntimeError):
    """torch.compile could not compile the frame phase here (the message says how to render without it)."""


class FrameGraphs:
    """The frame phase of `network` as ahead-of-time compiled graphs, kept in `directory` (default: under
    `compile_cache_dir()`, by `artifact_key`). Call it like `network.render` (x, asr, style, lengths, seeds, pitch,
    all on the device, made in inference mode); it runs in inference mode with autocast to `dtype` (see
    `context`). Thread-safe.

    `compiled` / `loaded` count the graphs this object compiled and loaded; `compile_s` / `load_s` their seconds.
    """

    def __init__(self, network: KokoroNetwork, device: torch.device, dtype: torch.dtype | None = None,
                 directory: str | os.PathLike | None = None):
        self.network = network
        self.device = torch.device(device)
        self.dtype = dtype
        self.directory = Path(directory) if directory is not None else (
            Path(compile_cache_dir()) / "frame-phase" / artifact_key(network, self.device, dtype))
        self.graphs: list = []  # AOTCompiledFunction, tried in order
        self.compiled = self.loaded = 0
        self.compile_s = self.load_s = 0.0
        self._lock = threading.Lock()
        self._load_done = False
        self._ran: set[int] = set()  # id() of the graphs called at least once

    def context(self) -> contextlib.ExitStack:
        """The state the graphs are compiled, loaded, checked and run in: inference mode, autocast to `dtype`
        (off for float32) and, on CUDA, CUDA_GUARD_THREADS CPU threads. Guards compare it, and a loaded graph's
        guards take the dispatch keys they expect of the parameters from the state at load time, so loading
        outside inference mode would reject every call."""
        stack = contextlib.ExitStack()
        if self.device.type == "cuda":  # see CUDA_GUARD_THREADS; the CPU's compiled code does use its threads
            threads = torch.get_num_threads()
            torch.set_num_threads(CUDA_GUARD_THREADS)
            stack.callback(torch.set_num_threads, threads)
        stack.enter_context(torch.inference_mode())
        stack.enter_context(torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                                           enabled=self.dtype is not None))
        return stack

    # ---------------------------------------------------------------- loading
    def load(self) -> GraphLoad:
        """Load every graph file in `directory` (once per object; later calls return an empty GraphLoad). A file
        that cannot be loaded is deleted with a CompileCacheWarning."""
        with self._lock, self.context():
            if self._load_done:
                return GraphLoad()
            self._load_done = True
            report = GraphLoad()
            start = time.perf_counter()
            for path in sorted(self.directory.glob("*.graph")) if self.directory.is_dir() else []:
                try:
                    graph = self._read(path)
                except Exception as exc:  # noqa: BLE001 - any unusable file: warn, delete, compile again
                    interrupts.check()  # unless it was Ctrl-C, turned into another error by compiled code
                    report.failed.append(f"{path.name}: {type(exc).__name__}: {str(exc)[:200]}")
                    warnings.warn(f"cannot use the compiled frame phase {path} ({type(exc).__name__}: "
                                  f"{str(exc)[:200]}); deleting it, the graph will be compiled again",
                                  CompileCacheWarning, stacklevel=2)
                    path.unlink(missing_ok=True)
                    continue
                self.graphs.append(graph)
                report.loaded += 1
            report.seconds = time.perf_counter() - start
            self.loaded += report.loaded
            self.load_s += report.seconds
            return report

    def _read(self, path: Path):
        envelope = pickle.loads(path.read_bytes())
        if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} frame-phase graph")
        render_globals = vars(sys.modules[KokoroNetwork.render.__module__])
        return torch.compiler.load_compiled_function(io.BytesIO(envelope["artifact"]), f_globals=render_globals)

    def _write(self, graph, example: tuple[int, int]) -> Path | None:
        from torch._dynamo.aot_compile import AOTCompiledFunction

        data = pickle.dumps({"format": FORMAT, "example": example, "torch": torch.__version__,
                             "artifact": AOTCompiledFunction.serialize(graph).serialized_data})
        path = self.directory / f"{example[0]}x{example[1]}-{uuid.uuid4().hex[:8]}.graph"
        try:
            atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
        except OSError as exc:
            warnings.warn(f"cannot save the compiled frame phase in {self.directory} ({exc}); the next process "
                          "compiles it again", CompileCacheWarning, stacklevel=3)
            return None
        return path

    # ---------------------------------------------------------------- calling
    def graph_for(self, x, asr, style, lengths, seeds, pitch):
        """The graph (loaded or compiled) that accepts these inputs, or None (a call would compile one)."""
        with self.context():
            return self._accepting((self.network, x, asr, style, lengths, seeds, pitch))

    def _accepting(self, args):
        """The first graph whose guards accept `args` (the network first), or None; call inside `context()`."""
        return next((g for g in self.graphs if g.guard_check(*args)), None)

    def serves(self, x, asr, style, lengths, seeds, pitch) -> bool:
        """Whether a graph already loaded or compiled accepts these inputs."""
        return self.graph_for(x, asr, style, lengths, seeds, pitch) is not None

    def has_run(self, graph) -> bool:
        """Whether `graph` has run in this process (its first call's one-time costs are paid)."""
        return id(graph) in self._ran

    def __call__(self, x, asr, style, lengths, seeds, pitch, max_graphs: int = 64) -> torch.Tensor:
        """network.render(x, asr, style, lengths, seeds, pitch) by the first graph whose guards accept the inputs;
        if none does, compile one (GraphLimit if that would make more than `max_graphs`)."""
        if not self._load_done:
            self.load()
        args = (self.network, x, asr, style, lengths, seeds, pitch)
        with self.context():
            graph = self._accepting(args)
            if graph is None:
                with self._lock:  # another thread may have compiled it meanwhile
                    graph = self._accepting(args)
                    if graph is None:
                        if len(self.graphs) >= max_graphs:
                            raise GraphLimit(f"the compiled frame phase needed more than {max_graphs} graphs "
                                             f"(shape {tuple(x.shape)})")
                        graph = self._compile(args)
                        self.graphs.append(graph)
            out = graph(*args)
            self._ran.add(id(graph))
            return out

    def _compile(self, args):
        """Trace and compile one graph for these inputs (the network first), save it, and return it.

        Sizes are symbolic (dynamic=True). backed_size_oblivious (CPU only, SIZE_OBLIVIOUS): sizes are not assumed
        to be 0 or 1 where the code does not need it, which (measured) also keeps inductor's CPU code from guarding
        its float sums on `20 * frames <= 4096`, so that short and long batches share one graph (a batch of one row
        still gets a graph of its own). specialize_float: float constants of the model code (eps, pi, the
        source's amplitudes) stay constants instead of graph inputs guarded against NaN through module globals,
        guards that do not survive saving (they would reject every call of a loaded graph). CHANNELS_LAST: the
        convolutions and the kernels between them channels-last (off by default)."""
        import torch._dynamo.config as dynamo_config
        import torch._inductor.config as inductor_config
        import torch.fx.experimental._config as fx_config

        from .progress import notice

        x = args[1]
        notice(f"compiling the frame phase for {tuple(x.shape)[0]}x{tuple(x.shape)[-1]} on {self.device} (once per "
               f"machine and torch version; minutes on a GPU), into {self.directory}")
        start = time.perf_counter()
        with (dynamo_config.patch(enable_aot_compile=True, specialize_float=True),
              fx_config.patch(backed_size_oblivious=SIZE_OBLIVIOUS.get(self.device.type, False)),
              inductor_config.patch(force_layout_optimization=CHANNELS_LAST.get(self.device.type, False))):
            fn = torch.compile(type(self.network).render, dynamic=True, fullgraph=True)
            try:
                graph = fn.aot_compile((args, {}))
            except Exception as exc:  # noqa: BLE001 - inductor's errors are many; the user needs the way out
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                raise CompileFailed(
                    f"compiling the frame phase failed on {self.device} with torch {torch.__version__} "
                    f"({type(exc).__name__}: {first}); render without compiling: Performance(compile=False) "
                    "in Python, --no-compile on the command line") from exc
        self._write(graph, (x.shape[0], x.shape[-1]))
        self.compiled += 1
        self.compile_s += time.perf_counter() - start
        notice(f"compiled in {time.perf_counter() - start:.0f} s")
        return graph
