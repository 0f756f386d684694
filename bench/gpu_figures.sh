#!/usr/bin/env bash
# The figures that need an NVIDIA GPU, in one go (about 7 minutes on an H100):
#   - training against the Trainer on ruGPT-3 small's shape at block 1024 in bf16, with MFU;
#   - decoding with the static cache against model.generate();
#   - the memory plan against torch.cuda.max_memory_allocated (LoRA and full, ± checkpointing);
#   - a run too big for the card, refused before it starts with settings that would fit;
#   - a demo run on the GPU through its evaluations, and the hardware readings through NVML.
#
#   bench/gpu_figures.sh [PYTHON]      (PYTHON: an interpreter with the project's packages)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
RUGPT_TUI_HOME=$(mktemp -d) && export RUGPT_TUI_HOME
work=$(mktemp -d)
failed=0
section() { printf '\n## %s\n' "$*"; }
check() { "$@" || { failed=1; echo "FAILED ($?): $*"; }; }

section "The GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
check "$PY" -c "import torch, transformers; print('torch', torch.__version__, '· transformers', transformers.__version__)"

section "A demo run on the GPU: bf16, fused AdamW, four evaluations; then decoding"
check "$PY" -m tui.cli train --model demo --device cuda --train core/resources/corpus_ru.txt \
    --max-steps 40 --eval-every 10 --no-record
check "$PY" -m tui.cli generate --model demo --device cuda --static-cache --max-new-tokens 24 \
    --seed 0 --prompt "Однажды утром"

section "The hardware through NVML"
check "$PY" -c "from core.base.hardware import HardwareMonitor as M; m = M(); r = m.read()
print(r.line()); assert m.has_gpus and r.gpus[0].memory_total > 0"
check "$PY" -m pytest -q -p no:cacheprovider tests/test_hardware.py

section "A run too big for the card is refused before it starts"
for _ in 1 2 3 4 5 6 7 8 9 10; do cat core/resources/corpus_ru.txt; done > "$work/big.txt"
model=$("$PY" -c "import sys; from pathlib import Path; from bench.train_vs_trainer import build_model
print(build_model('rugpt3-small', Path(sys.argv[1])))" "$work")
"$PY" -m tui.cli train --model "$model" --device cuda --train "$work/big.txt" --block-size 1024 \
    --batch-size 128 --max-steps 1 --no-record
code=$?
[ "$code" = 2 ] || { failed=1; echo "FAILED: expected the refusal's exit 2, got $code"; }

section "Training against the Trainer: ruGPT-3 small's shape, block 1024, bf16"
check "$PY" -m bench.train_vs_trainer --device cuda --shapes rugpt3-small --modes full,lora \
    --block 1024 --runs 2 --steps 30

section "Decoding: our loop, with the static cache, and model.generate()"
check "$PY" -m bench.generate_speed --device cuda --runs 5 --tokens 128

section "The memory plan against max_memory_allocated"
check "$PY" -m bench.lora_vs_full --device cuda --block-size 1024 --batch-size 8 --steps 6

exit $failed
