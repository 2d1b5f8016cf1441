//! Sentence embeddings with ONNX Runtime: load the runtime library (checked, so a
//! wrong library is an error, not a panic), a sentence-encoder model folder
//! (`model.onnx` + `tokenizer.json`), and turn texts into L2-normalised vectors
//! (mean pooling over the attention mask). Texts are sorted by length and padded
//! to the longest in each `MODEL_BATCH_SIZE` batch, so short messages do not pay
//! for long ones. No Redis, no HTTP here.

pub mod cache;
pub mod saved;

use ndarray::Array2;
use ort::session::Session;
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("ONNX Runtime library {path}: {message} (run scripts/setup, or set ORT_DYLIB_PATH)")]
    Runtime { path: PathBuf, message: String },
    #[error("model folder {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("device `{0}` cannot be used: {1}")]
    Device(String, String),
    #[error("embedding failed: {0}")]
    Inference(String),
}

/// Where to run the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            other => Err(format!("`{other}` is not cpu or cuda")),
        }
    }
}

static RUNTIME: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Load the ONNX Runtime library once per process.
fn runtime(lib: &Path) -> Result<&'static ort::environment::Environment, EmbedError> {
    let env = RUNTIME.get_or_init(|| {
        if !lib.is_file() {
            return Err("file not found".into());
        }
        let builder = ort::init_from(lib).map_err(|e| e.to_string())?;
        builder.with_name("palisade").with_telemetry(false).build().map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|message| EmbedError::Runtime { path: lib.into(), message: message.clone() })
}

/// A loaded sentence encoder.
pub struct Embedder {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    /// Names the model in caches and predictions (folder name).
    pub model_id: String,
    /// Prepended to every text (e5-style models want `query: `).
    pub prefix: String,
    pub batch_size: usize,
    pub dim: usize,
    input_names: Vec<String>,
}

/// Put the CUDA execution provider first, failing (never falling back to the CPU)
/// when the runtime library cannot run it.
#[cfg(feature = "cuda")]
fn with_cuda(
    builder: ort::session::builder::SessionBuilder,
    lib: &Path,
) -> Result<ort::session::builder::SessionBuilder, EmbedError> {
    use ort::ep::ExecutionProvider;
    let refuse = |why: String| EmbedError::Device("cuda".into(), format!("{why} (ORT_DYLIB_PATH {})", lib.display()));
    if !ort::ep::CUDA::is_available().unwrap_or(false) {
        return Err(refuse(
            "this ONNX Runtime library has no CUDA execution provider: `scripts/setup --cuda` fetches one".into(),
        ));
    }
    builder.with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()]).map_err(|e| {
        refuse(format!("the CUDA execution provider did not start (it needs an NVIDIA GPU with CUDA 13 and cuDNN 9 libraries on the loader path): {e}"))
    })
}

#[cfg(not(feature = "cuda"))]
fn with_cuda(
    _builder: ort::session::builder::SessionBuilder,
    _lib: &Path,
) -> Result<ort::session::builder::SessionBuilder, EmbedError> {
    Err(EmbedError::Device(
        "cuda".into(),
        "this binary was built without the `cuda` feature; rebuild with --features cuda or use DEVICE=cpu".into(),
    ))
}

impl Embedder {
    /// Load `dir/model.onnx` and `dir/tokenizer.json` with the ONNX Runtime library at `lib`.
    pub fn load(dir: &Path, lib: &Path, device: Device, batch_size: usize, prefix: &str) -> Result<Self, EmbedError> {
        let model_err = |message: String| EmbedError::Model { path: dir.into(), message };
        for file in ["model.onnx", "tokenizer.json"] {
            if !dir.join(file).is_file() {
                return Err(model_err(format!(
                    "{file} is missing (SCREENING_MODEL must name a folder with model.onnx and tokenizer.json)"
                )));
            }
        }
        let environment = runtime(lib)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut builder = Session::builder(environment)
            .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
            .map_err(|e| model_err(format!("session: {e}")))?;
        if device == Device::Cuda {
            builder = with_cuda(builder, lib)?;
        }
        let session =
            builder.commit_from_file(dir.join("model.onnx")).map_err(|e| model_err(format!("model.onnx: {e}")))?;
        let input_names: Vec<String> = session.inputs().iter().map(|i| i.name().to_string()).collect();
        if !input_names.iter().any(|n| n == "input_ids") || !input_names.iter().any(|n| n == "attention_mask") {
            return Err(model_err(format!(
                "model.onnx takes {input_names:?}; a sentence encoder takes input_ids and attention_mask"
            )));
        }
        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| model_err(format!("tokenizer.json: {e}")))?;
        // The shipped tokenizer pads every text to a fixed length: pad to the longest in the batch instead.
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        let max_length = tokenizer.get_truncation().map_or(256, |t| t.max_length.max(128));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
            .map_err(|e| model_err(format!("tokenizer.json: {e}")))?;
        let model_id = dir.file_name().and_then(|n| n.to_str()).unwrap_or("model").to_string();
        let mut embedder = Embedder {
            session: Mutex::new(session),
            tokenizer,
            model_id,
            prefix: prefix.to_string(),
            batch_size: batch_size.max(1),
            dim: 0,
            input_names,
        };
        embedder.dim = embedder.embed(&["probe"])?.first().map_or(0, Vec::len);
        if embedder.dim == 0 {
            return Err(model_err("the model produced an empty embedding".into()));
        }
        Ok(embedder)
    }

    /// One L2-normalised vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|i| texts[*i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<String> = chunk.iter().map(|i| format!("{}{}", self.prefix, texts[*i])).collect();
            for (i, v) in chunk.iter().zip(self.embed_batch(batch)?) {
                out[*i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let fail = |e: String| EmbedError::Inference(e);
        let encodings = self.tokenizer.encode_batch(texts, true).map_err(|e| fail(e.to_string()))?;
        let (n, len) = (encodings.len(), encodings.first().map_or(0, |e| e.get_ids().len()));
        let grid = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Array2<i64> {
            Array2::from_shape_fn((n, len), |(r, c)| i64::from(f(&encodings[r])[c]))
        };
        let ids = grid(&|e| e.get_ids());
        let mask = grid(&|e| e.get_attention_mask());
        let types = grid(&|e| e.get_type_ids());
        let mut session = self.session.lock().map_err(|_| fail("session lock poisoned".into()))?;
        let mut inputs = ort::inputs![
            "input_ids" => TensorRef::from_array_view(&ids).map_err(|e| fail(e.to_string()))?,
            "attention_mask" => TensorRef::from_array_view(&mask).map_err(|e| fail(e.to_string()))?,
        ];
        if self.input_names.iter().any(|n| n == "token_type_ids") {
            inputs.push((
                "token_type_ids".into(),
                TensorRef::from_array_view(&types).map_err(|e| fail(e.to_string()))?.into(),
            ));
        }
        let outputs = session.run(inputs).map_err(|e| fail(e.to_string()))?;
        let hidden = outputs[0].try_extract_array::<f32>().map_err(|e| fail(e.to_string()))?;
        let shape = hidden.shape().to_vec();
        if shape.len() == 2 {
            // Already pooled ([batch, dim]).
            return Ok(hidden.outer_iter().map(|row| normalise(row.iter().copied().collect())).collect());
        }
        if shape.len() != 3 || shape[0] != n || shape[1] != len {
            return Err(fail(format!("unexpected output shape {shape:?}")));
        }
        let dim = shape[2];
        let mut out = Vec::with_capacity(n);
        for r in 0..n {
            let mut v = vec![0f32; dim];
            let mut count = 0f32;
            for c in 0..len {
                if mask[[r, c]] == 0 {
                    continue;
                }
                count += 1.0;
                for (d, x) in v.iter_mut().enumerate() {
                    *x += hidden[[r, c, d]];
                }
            }
            v.iter_mut().for_each(|x| *x /= count.max(1.0));
            out.push(normalise(v));
        }
        Ok(out)
    }
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Cosine similarity of two normalised vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
