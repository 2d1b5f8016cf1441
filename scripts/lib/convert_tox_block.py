"""Convert the tox-block 0.1.2 wheel (MIT, PyPI) into Palisade's toxicity side
model file, without TensorFlow: h5py reads the Keras weights, and the pickled
Keras tokenizer is read with stand-in classes (only its word index is kept).

    python3 convert_tox_block.py tox_block-0.1.2-py3-none-any.whl OUT.bin

It also writes the package's licence (MIT) beside OUT.bin, as LICENSE.

OUT.bin (little-endian; host/detect/src/toxicity.rs reads it):
    b"PLSDTOX1", u32 vocab, dim, units, dense, outputs, maxlen
    f32 embedding[vocab][dim]
    forward LSTM:  kernel[dim][4*units], recurrent[units][4*units], bias[4*units]
    backward LSTM: the same (Keras gate order i, f, c, o)
    f32 dense kernel[2*units][dense], bias[dense]; output kernel[dense][outputs], bias[outputs]
    f32 rescale min[outputs], max[outputs] (the package's RESCALE_PROBA)
    words 1..vocab-1 of the tokenizer's index: u32 byte length, UTF-8 bytes
"""

import io
import json
import os
import pickle
import struct
import sys
import zipfile

import h5py
import numpy as np

CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
# tox_block/config/config.py, RESCALE_PROBA (min, max) per class.
RESCALE = {
    "toxic": (0.002116, 0.999858),
    "severe_toxic": (0.000011, 0.648682),
    "obscene": (0.000347, 0.997533),
    "threat": (0.000040, 0.918887),
    "insult": (0.000373, 0.986303),
    "identity_hate": (0.000074, 0.901117),
}


class _Stand:
    """Any class the pickle names outside the standard library: keeps its state."""

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state


class _Reader(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] in ("builtins", "collections", "copyreg", "_codecs"):
            return super().find_class(module, name)
        return type(name, (_Stand,), {"__module__": module})


def fail(message):
    sys.exit(f"convert_tox_block: {message}")


def main(wheel, out):
    with zipfile.ZipFile(wheel) as z:
        h5 = z.read("tox_block/trained_models/lstm_model_0.1.2.h5")
        encoder = _Reader(io.BytesIO(z.read("tox_block/trained_models/encoder_0.1.2.pkl"))).load()
        licence = z.read("tox_block-0.1.2.dist-info/LICENSE")
    tokenizer = encoder.state["tokenizer"].state
    maxlen = encoder.state["max_sequence_length"]
    vocab = tokenizer["num_words"]
    if tokenizer["lower"] is not True or tokenizer["split"] != " " or tokenizer["char_level"] or tokenizer["oov_token"]:
        fail("the tokenizer's settings are not the ones this converter knows")
    if tokenizer["filters"] != '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n':
        fail(f"unexpected tokenizer filters {tokenizer['filters']!r}")
    words = tokenizer["index_word"]

    f = h5py.File(io.BytesIO(h5), "r")
    layers = json.loads(f.attrs["model_config"])["config"]["layers"]
    lstm = next(l for l in layers if l["class_name"] == "Bidirectional")["config"]["layer"]["config"]
    if (lstm["activation"], lstm["recurrent_activation"]) != ("tanh", "hard_sigmoid"):
        fail(f"LSTM activations {lstm['activation']}/{lstm['recurrent_activation']}, expected tanh/hard_sigmoid")
    w = f["model_weights"]

    def get(path):
        return np.asarray(w[path], dtype="<f4")

    emb = get("embedding/embedding/embeddings:0")
    dim = emb.shape[1]
    units = lstm["units"]
    d1k, d1b = get("dense/dense/kernel:0"), get("dense/dense/bias:0")
    d2k, d2b = get("dense_1/dense_1/kernel:0"), get("dense_1/dense_1/bias:0")
    if emb.shape[0] != vocab or d2k.shape[1] != len(CLASSES):
        fail(f"shapes: embedding {emb.shape}, output {d2k.shape}")

    blob = bytearray(b"PLSDTOX1")
    blob += struct.pack("<6I", vocab, dim, units, d1k.shape[1], len(CLASSES), maxlen)
    arrays = [emb]
    for direction in ("forward", "backward"):
        base = f"bidirectional/bidirectional/{direction}_lstm/"
        arrays += [get(base + "kernel:0"), get(base + "recurrent_kernel:0"), get(base + "bias:0")]
    arrays += [d1k, d1b, d2k, d2b]
    arrays += [np.array([RESCALE[c][0] for c in CLASSES], "<f4"), np.array([RESCALE[c][1] for c in CLASSES], "<f4")]
    for a in arrays:
        blob += np.ascontiguousarray(a, dtype="<f4").tobytes()
    for i in range(1, vocab):
        b = words[i].encode("utf-8")
        blob += struct.pack("<I", len(b)) + b
    with open(out, "wb") as o:
        o.write(blob)
    with open(os.path.join(os.path.dirname(os.path.abspath(out)), "LICENSE"), "wb") as o:
        o.write(licence)
    print(f"    {vocab} words x {dim} dims, BiLSTM {units} units, {len(blob) / 1e6:.1f} MB -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: convert_tox_block.py WHEEL OUT.bin")
    main(sys.argv[1], sys.argv[2])
