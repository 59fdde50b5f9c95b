//! The parts of the TFLite flatbuffer schema Fovea reads, as hand-written accessors over
//! [`flatbuffers::Table`] with [`Verifiable`] impls.
//!
//! Field slots follow the published schema (`tensorflow/lite/schema/schema.fbs`): field `n` of
//! a table sits at vtable offset `4 + 2n`. Only the fields Fovea reads are declared; the
//! verifier checks each of them (bounds, alignment, UTF-8, nested tables) before any accessor
//! runs, so the accessors' `unsafe` reads are sound for a buffer returned by [`root`].

use flatbuffers::{ForwardsUOffset, Table, Vector, Verifiable, Verifier, VerifierOptions};

pub(crate) use flatbuffers::InvalidFlatbuffer;

/// Declares a table: the struct, `Follow`, the field accessors, and `visit_fields`, which runs
/// the verifier over every declared field.
macro_rules! table_struct {
    ($(#[$doc:meta])* $name:ident { $( $field:ident : $ty:ty = $slot:expr ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name<'a> {
            tab: Table<'a>,
        }

        impl<'a> flatbuffers::Follow<'a> for $name<'a> {
            type Inner = $name<'a>;
            unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
                // SAFETY: the caller (flatbuffers) passes the position of a verified table.
                $name { tab: unsafe { Table::new(buf, loc) } }
            }
        }

        #[allow(dead_code)]
        impl<'a> $name<'a> {
            $(
                pub(crate) fn $field(&self) -> Option<<$ty as flatbuffers::Follow<'a>>::Inner> {
                    // SAFETY: `visit_fields` verified this slot as `$ty` before the table was
                    // handed out (tables only come from a verified root).
                    unsafe { self.tab.get::<$ty>($slot, None) }
                }
            )*

            #[allow(clippy::needless_question_mark)]
            fn visit_fields<'v, 'o, 'b>(
                t: flatbuffers::TableVerifier<'v, 'o, 'b>,
            ) -> Result<flatbuffers::TableVerifier<'v, 'o, 'b>, InvalidFlatbuffer> {
                Ok(t $( .visit_field::<$ty>(stringify!($field), $slot, false)? )*)
            }
        }
    };
}

/// A table whose verifier checks exactly its declared fields.
macro_rules! table {
    ($(#[$doc:meta])* $name:ident { $($body:tt)* }) => {
        table_struct!($(#[$doc])* $name { $($body)* });
        impl Verifiable for $name<'_> {
            fn run_verifier(v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
                Self::visit_fields(v.visit_table(pos)?)?.finish();
                Ok(())
            }
        }
    };
}

type Str<'a> = ForwardsUOffset<&'a str>;
type Vec32<'a> = ForwardsUOffset<Vector<'a, i32>>;
type Tables<'a, T> = ForwardsUOffset<Vector<'a, ForwardsUOffset<T>>>;

table!(
    /// `Model`: the root table.
    Model {
        version: u32 = 4,
        operator_codes: Tables<'a, OperatorCode<'a>> = 6,
        subgraphs: Tables<'a, SubGraph<'a>> = 8,
        buffers: Tables<'a, Buffer<'a>> = 12,
    }
);

table!(
    /// `OperatorCode`: the builtin code (two fields, the larger wins) or a custom name.
    OperatorCode {
        deprecated_builtin_code: i8 = 4,
        custom_code: Str<'a> = 6,
        version: i32 = 8,
        builtin_code: i32 = 10,
    }
);

table!(
    /// `SubGraph`: tensors, inputs, outputs and operators in execution order.
    SubGraph {
        tensors: Tables<'a, Tensor<'a>> = 4,
        inputs: Vec32<'a> = 6,
        outputs: Vec32<'a> = 8,
        operators: Tables<'a, Operator<'a>> = 10,
        name: Str<'a> = 12,
    }
);

table!(
    /// `Tensor`: shape, element type, buffer index, name, quantisation.
    Tensor {
        shape: Vec32<'a> = 4,
        type_: i8 = 6,
        buffer: u32 = 8,
        name: Str<'a> = 10,
        quantization: ForwardsUOffset<Quantization<'a>> = 12,
        sparsity: ForwardsUOffset<AnyTable<'a>> = 16,
    }
);

table!(
    /// `QuantizationParameters`: only whether scales are present matters to Fovea.
    Quantization {
        scale: ForwardsUOffset<Vector<'a, f32>> = 8,
    }
);

table!(
    /// `Buffer`: bytes inline, or (files over 2 GB) an offset and size into the file.
    Buffer {
        data: ForwardsUOffset<Vector<'a, u8>> = 4,
        offset: u64 = 6,
        size: u64 = 8,
    }
);

table_struct!(
    /// `Operator`: opcode index, tensor indices, options (a union) and custom options.
    Operator {
        opcode_index: u32 = 4,
        inputs: Vec32<'a> = 6,
        outputs: Vec32<'a> = 8,
        builtin_options_type: u8 = 10,
        builtin_options: ForwardsUOffset<AnyTable<'a>> = 12,
        custom_options: ForwardsUOffset<Vector<'a, u8>> = 14,
    }
);

impl Verifiable for Operator<'_> {
    fn run_verifier(v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
        // The options field was visited above as a bare table; the union visit checks it again
        // with the fields of the type its key names.
        Self::visit_fields(v.visit_table(pos)?)?
            .visit_union::<u8, _>("builtin_options_type", 10, "builtin_options", 12, false, verify_options)?
            .finish();
        Ok(())
    }
}

/// Verifies a `BuiltinOptions` union value as the table its key names (`BuiltinOptions` enum of
/// the schema); other keys are checked as bare tables (their fields are never read).
fn verify_options(key: u8, v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
    use flatbuffers::ForwardsUOffset as F;
    match key {
        1 => v.verify_union_variant::<F<Conv2DOptions>>("Conv2DOptions", pos),
        2 => v.verify_union_variant::<F<DepthwiseConv2DOptions>>("DepthwiseConv2DOptions", pos),
        5 => v.verify_union_variant::<F<Pool2DOptions>>("Pool2DOptions", pos),
        8 => v.verify_union_variant::<F<FullyConnectedOptions>>("FullyConnectedOptions", pos),
        9 => v.verify_union_variant::<F<SoftmaxOptions>>("SoftmaxOptions", pos),
        10 => v.verify_union_variant::<F<ConcatenationOptions>>("ConcatenationOptions", pos),
        11 | 21 | 28 | 29 => v.verify_union_variant::<F<ActivationOptions>>("ActivationOptions", pos),
        15 => v.verify_union_variant::<F<ResizeBilinearOptions>>("ResizeBilinearOptions", pos),
        17 => v.verify_union_variant::<F<ReshapeOptions>>("ReshapeOptions", pos),
        27 => v.verify_union_variant::<F<ReducerOptions>>("ReducerOptions", pos),
        30 => v.verify_union_variant::<F<SqueezeOptions>>("SqueezeOptions", pos),
        32 => v.verify_union_variant::<F<StridedSliceOptions>>("StridedSliceOptions", pos),
        49 => v.verify_union_variant::<F<TransposeConvOptions>>("TransposeConvOptions", pos),
        74 => v.verify_union_variant::<F<ResizeNearestOptions>>("ResizeNearestNeighborOptions", pos),
        75 => v.verify_union_variant::<F<LeakyReluOptions>>("LeakyReluOptions", pos),
        _ => v.verify_union_variant::<F<AnyTable>>("options", pos),
    }
}

table!(
    /// A table checked only for its own bounds (union variants and tables Fovea never reads
    /// field by field).
    AnyTable {}
);

/// Union keys of the options tables below (`BuiltinOptions` in the schema).
pub(crate) mod options_key {
    /// `Conv2DOptions`.
    pub const CONV2D: u8 = 1;
    /// `DepthwiseConv2DOptions`.
    pub const DEPTHWISE: u8 = 2;
    /// `Pool2DOptions`.
    pub const POOL2D: u8 = 5;
    /// `FullyConnectedOptions`.
    pub const FULLY_CONNECTED: u8 = 8;
    /// `SoftmaxOptions`.
    pub const SOFTMAX: u8 = 9;
    /// `ConcatenationOptions`.
    pub const CONCATENATION: u8 = 10;
    /// `AddOptions`, `MulOptions`, `SubOptions`, `DivOptions`.
    pub const ACTIVATION: [u8; 4] = [11, 21, 28, 29];
    /// `ResizeBilinearOptions`.
    pub const RESIZE_BILINEAR: u8 = 15;
    /// `ReshapeOptions`.
    pub const RESHAPE: u8 = 17;
    /// `ReducerOptions`.
    pub const REDUCER: u8 = 27;
    /// `SqueezeOptions`.
    pub const SQUEEZE: u8 = 30;
    /// `StridedSliceOptions`.
    pub const STRIDED_SLICE: u8 = 32;
    /// `TransposeConvOptions`.
    pub const TRANSPOSE_CONV: u8 = 49;
    /// `ResizeNearestNeighborOptions`.
    pub const RESIZE_NEAREST: u8 = 74;
    /// `LeakyReluOptions`.
    pub const LEAKY_RELU: u8 = 75;
}

table!(
    /// `Conv2DOptions`.
    Conv2DOptions {
        padding: i8 = 4,
        stride_w: i32 = 6,
        stride_h: i32 = 8,
        fused_activation_function: i8 = 10,
        dilation_w_factor: i32 = 12,
        dilation_h_factor: i32 = 14,
    }
);

table!(
    /// `DepthwiseConv2DOptions`.
    DepthwiseConv2DOptions {
        padding: i8 = 4,
        stride_w: i32 = 6,
        stride_h: i32 = 8,
        depth_multiplier: i32 = 10,
        fused_activation_function: i8 = 12,
        dilation_w_factor: i32 = 14,
        dilation_h_factor: i32 = 16,
    }
);

table!(
    /// `Pool2DOptions`.
    Pool2DOptions {
        padding: i8 = 4,
        stride_w: i32 = 6,
        stride_h: i32 = 8,
        filter_width: i32 = 10,
        filter_height: i32 = 12,
        fused_activation_function: i8 = 14,
    }
);

table!(
    /// `FullyConnectedOptions`.
    FullyConnectedOptions {
        fused_activation_function: i8 = 4,
        weights_format: i8 = 6,
        keep_num_dims: bool = 8,
    }
);

table!(
    /// `SoftmaxOptions`.
    SoftmaxOptions {
        beta: f32 = 4,
    }
);

table!(
    /// `ConcatenationOptions`.
    ConcatenationOptions {
        axis: i32 = 4,
        fused_activation_function: i8 = 6,
    }
);

table!(
    /// `AddOptions`, `SubOptions`, `MulOptions` and `DivOptions`: field 0 is the fused activation.
    ActivationOptions {
        fused_activation_function: i8 = 4,
    }
);

table!(
    /// `ResizeBilinearOptions` (fields 0 and 1 are deprecated).
    ResizeBilinearOptions {
        align_corners: bool = 8,
        half_pixel_centers: bool = 10,
    }
);

table!(
    /// `ResizeNearestNeighborOptions`.
    ResizeNearestOptions {
        align_corners: bool = 4,
        half_pixel_centers: bool = 6,
    }
);

table!(
    /// `ReshapeOptions`.
    ReshapeOptions {
        new_shape: Vec32<'a> = 4,
    }
);

table!(
    /// `ReducerOptions` (MEAN, SUM, ...).
    ReducerOptions {
        keep_dims: bool = 4,
    }
);

table!(
    /// `SqueezeOptions`.
    SqueezeOptions {
        squeeze_dims: Vec32<'a> = 4,
    }
);

table!(
    /// `StridedSliceOptions`.
    StridedSliceOptions {
        begin_mask: i32 = 4,
        end_mask: i32 = 6,
        ellipsis_mask: i32 = 8,
        new_axis_mask: i32 = 10,
        shrink_axis_mask: i32 = 12,
        offset: bool = 14,
    }
);

table!(
    /// `TransposeConvOptions`.
    TransposeConvOptions {
        padding: i8 = 4,
        stride_w: i32 = 6,
        stride_h: i32 = 8,
        fused_activation_function: i8 = 10,
    }
);

table!(
    /// `LeakyReluOptions`.
    LeakyReluOptions {
        alpha: f32 = 4,
    }
);

/// Reinterprets a verified options table as the options type `T` (same buffer and position).
/// Only call it with the type the union key names: that is the type the verifier checked.
pub(crate) fn options_as<'a, T: flatbuffers::Follow<'a, Inner = T>>(t: AnyTable<'a>) -> T {
    // SAFETY: `t` is a verified union value whose key selected `T`'s verifier (see
    // `verify_options`); the caller checks the key before converting.
    unsafe { T::follow(t.tab.buf(), t.tab.loc()) }
}

/// Verifies `bytes` as a TFLite model and returns its root table. The limits keep a hostile
/// file from making verification itself expensive.
pub(crate) fn root(bytes: &[u8]) -> Result<Model<'_>, InvalidFlatbuffer> {
    let opts = VerifierOptions {
        max_depth: 64,
        max_tables: 10_000_000,
        max_apparent_size: 1 << 31,
        ..Default::default()
    };
    flatbuffers::root_with_opts::<Model>(&opts, bytes)
}
