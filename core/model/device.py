"""Device and dtype choice. `auto`: CUDA (bf16 where supported) → MPS → CPU.

On the CPU, `auto` is float32, except for inference with weights too big for the CPU's
caches on a CPU that computes bfloat16 natively: decode there is bound by memory bandwidth,
and bfloat16 halves the bytes read per token (bench/decode_dtype.py measures both)."""

from dataclasses import dataclass
from pathlib import Path

from core.base.errors import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Placement:
    device: str  # "cpu", "cuda", "cuda:1", "mps"
    dtype: str   # "float32", "bfloat16", "float16"
    # `auto` chose bfloat16 on the CPU for inference: training upcasts the weights to float32
    inference_only: bool = False

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


# Below this, the float32 weights of a decode step stay in the caches, so bfloat16 saves no
# memory traffic and only costs precision (the demo model: 1.0× in bench/decode_dtype.py).
CPU_BFLOAT16_MIN_WEIGHT_BYTES = 64 * 2**20
# x86 (AVX-512 BF16, AMX) and Arm (BF16) names of the instructions, as Linux lists them
_BFLOAT16_CPU_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def cpu_computes_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 natively, from the flags Linux lists; False where
    they cannot be read (another OS, a sandbox)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return bool(_BFLOAT16_CPU_FLAGS & set(value.split()))
    return False


def cpu_inference_dtype(weight_bytes: int, native_bfloat16: bool) -> str:
    """What `--dtype auto` loads for inference on the CPU, for float32 weights this big."""
    return "bfloat16" if native_bfloat16 and weight_bytes >= CPU_BFLOAT16_MIN_WEIGHT_BYTES \
        else "float32"


def choose_placement(device: str = "auto", dtype: str = "auto") -> Placement:
    """Resolve `--device`/`--dtype` through Accelerate's view of the hardware."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import is_mps_available

    if device not in DEVICES:
        raise UserError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")

    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available on this machine")
    if device in ("auto", "cuda") and torch.cuda.is_available():
        # Under torchrun / accelerate launch this is the rank's own GPU.
        resolved = str(PartialState().device)
    elif device == "auto" and is_mps_available():
        resolved = "mps"
    elif device == "mps":
        if not is_mps_available():
            raise UserError("--device mps: MPS is not available on this machine")
        resolved = "mps"
    else:
        resolved = "cpu"

    if dtype == "auto":
        if resolved.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    if dtype == "float16" and resolved == "cpu":
        raise UserError("--dtype float16 is not supported on the CPU: use float32 or bfloat16")
    return Placement(resolved, dtype)
