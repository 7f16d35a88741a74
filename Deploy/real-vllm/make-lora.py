"""A tiny LoRA adapter for the model make-model.py makes (rank 8 on every layer's q_proj and
v_proj, small random weights), in the PEFT layout vLLM loads (`adapter_config.json` and
`adapter_model.safetensors`): enough for a real vLLM started with `--enable-lora` to serve it
under its own name. Usage: make-lora.py MODEL_DIR OUT_DIR."""
import json
import os
import sys

import torch
from safetensors.torch import save_file

model_dir, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with open(os.path.join(model_dir, "config.json")) as f:
    config = json.load(f)
hidden, layers, rank = config["hidden_size"], config["num_hidden_layers"], 8
kv_dim = hidden // config["num_attention_heads"] * config.get("num_key_value_heads", config["num_attention_heads"])
generator = torch.Generator().manual_seed(7)
tensors = {}
for layer in range(layers):
    for module, out_dim in (("q_proj", hidden), ("v_proj", kv_dim)):
        prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
        tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, hidden, generator=generator) * 0.01
        tensors[f"{prefix}.lora_B.weight"] = torch.randn(out_dim, rank, generator=generator) * 0.01
save_file(tensors, os.path.join(out, "adapter_model.safetensors"))
with open(os.path.join(out, "adapter_config.json"), "w") as f:
    json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": model_dir, "r": rank,
               "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "bias": "none",
               "fan_in_fan_out": False, "modules_to_save": None, "use_rslora": False, "use_dora": False,
               "inference_mode": True}, f, indent=1)
print(f"adapter in {out}: rank {rank}, {len(tensors)} tensors")
