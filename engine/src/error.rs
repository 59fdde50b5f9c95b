//! The engine's error type.

use thiserror::Error;

/// An error from the engine: adapter choice, compilation, execution or user input.
#[derive(Debug, Error)]
pub enum EngineError {
    /// No GPU adapter (not even a software one) was found.
    #[error(
        "no GPU adapter found (tried: {tried}).\n\
         On Linux without a GPU, install Mesa's software Vulkan driver (lavapipe):\n    \
         sudo apt-get install -y mesa-vulkan-drivers\n\
         (Debian bookworm-backports' Mesa 25 is 4-5x faster than bookworm's 22.3). \
         On other systems install your GPU's Vulkan, Metal or DirectX 12 driver, \
         or set FOVEA_BACKEND=gl to use OpenGL."
    )]
    NoAdapter {
        /// The backends that were searched.
        tried: String,
    },
    /// `FOVEA_BACKEND` holds an unknown value.
    #[error("FOVEA_BACKEND={value} is not a backend; expected one of vulkan, metal, dx12, gl")]
    BadBackend {
        /// The value found.
        value: String,
    },
    /// The adapter refused to create a device.
    #[error("could not open a device on adapter '{adapter}': {message}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// A kernel could not be lowered or its WGSL did not validate.
    #[error(transparent)]
    Kernel(#[from] fovea_kernels::KernelError),
    /// A kernel's shader or pipeline was rejected by the device.
    #[error("kernel '{kernel}' failed to compile on the device: {message}")]
    ShaderCompile {
        /// The kernel instance's name.
        kernel: String,
        /// The device's (naga's) message.
        message: String,
    },
    /// The model or graph is invalid.
    #[error(transparent)]
    Graph(#[from] fovea_graph::GraphError),
    /// A value passed in does not fit the program (wrong length, unknown name...).
    #[error("{what}: {message}")]
    Input {
        /// The input, parameter or argument concerned.
        what: String,
        /// What was expected.
        message: String,
    },
    /// The NaN/Inf tripwire fired.
    #[error("non-finite value: node {node} (layer '{layer}', kernel {kernel}): {message}")]
    Numerics {
        /// The node (`%12 log`).
        node: String,
        /// Its layer.
        layer: String,
        /// The kernel that wrote it.
        kernel: String,
        /// Which element and value.
        message: String,
    },
    /// The device reported an error while running (out of memory, device lost, validation).
    #[error("device error: {0}")]
    Device(String),
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
