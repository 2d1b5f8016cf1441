"""Raw model rate of Python onnxruntime on the same model and texts as
`cargo bench -p palisade-benches --bench screening` (every n-th row of the SMS +
Davidson dev data, batch 32, sorted by length, padded to the longest).

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install var/downloads/onnxruntime-1.32.0-*.whl tokenizers numpy
    /tmp/refenv/bin/python benches/python_ort_rate.py [N]
"""
import json, sys, time
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
MODEL = "var/models/all-MiniLM-L6-v2"
rows = []
for name in ["sms-spam.dev.jsonl", "davidson-hate-offensive.dev.jsonl"]:
    with open(f"../shared/data/{name}") as f:
        rows += [json.loads(l) for l in f if l.strip()]
texts = [r["text"] for r in rows[:: max(len(rows) // N, 1)][:N]]

tok = Tokenizer.from_file(f"{MODEL}/tokenizer.json")
tok.enable_padding()  # pad to the longest in the batch
tok.enable_truncation(128)
sess = ort.InferenceSession(f"{MODEL}/model.onnx", providers=["CPUExecutionProvider"])
names = [i.name for i in sess.get_inputs()]

start = time.perf_counter()
order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
for b in range(0, len(order), 32):
    encs = tok.encode_batch([texts[i] for i in order[b : b + 32]])
    feed = {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64)}
    if "token_type_ids" in names:
        feed["token_type_ids"] = np.array([e.type_ids for e in encs], dtype=np.int64)
    hidden = sess.run(None, feed)[0]
    mask = feed["attention_mask"][..., None].astype(np.float32)
    v = (hidden * mask).sum(1) / mask.sum(1)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
print(f"python onnxruntime {ort.__version__}: {len(texts) / (time.perf_counter() - start):.0f} texts/s ({len(texts)} texts, batch 32)")
