//! Moving tensors between burn and our slice kernels (`crate::kernels`) on the CPU backend.
//!
//! The routed operations (`conv_op`, `norm_op`, `gate_op`, `cat_op`, `train::fused_loss`) decide
//! by the backend's type at run time, so the models stay generic over `B: Backend` without an
//! extra trait bound; this module holds the type test and the conversions they share.

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::autodiff::NodeId;

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::{Backend, BackendTypes};
use burn::tensor::{Bytes, DType, Shape, Tensor, TensorPrimitive};

pub type AutodiffFlex = Autodiff<Flex>;
pub type AutodiffFlexTensor = <AutodiffFlex as BackendTypes>::FloatTensorPrimitive;

/// Which of our routes a backend takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// burn's CPU backend without autodiff (inference).
    Flex,
    /// burn's CPU backend with autodiff (training).
    AutodiffFlex,
    /// Anything else (CUDA): burn's own operations.
    Burn,
}

pub fn route<B: Backend>(tensor: &Tensor<B, 4>) -> Route {
    let backend = TypeId::of::<B>();
    if tensor.dtype() != DType::F32 {
        Route::Burn
    } else if backend == TypeId::of::<Flex>() {
        Route::Flex
    } else if backend == TypeId::of::<AutodiffFlex>() {
        Route::AutodiffFlex
    } else {
        Route::Burn
    }
}

/// A value of type `T` as type `U`, when the two are the same type (the caller's `route` test
/// guarantees it; a mismatch is a bug).
pub fn cast<T: 'static, U: 'static>(value: T) -> U {
    *(Box::new(value) as Box<dyn Any>)
        .downcast::<U>()
        .expect("flex_bridge: backend type routing")
}

/// The float primitive of `tensor`, as the backend `P` the route named.
pub fn primitive<B: Backend, const D: usize, P: 'static>(tensor: Tensor<B, D>) -> P {
    cast(tensor.into_primitive().tensor())
}

/// A tensor of backend `B` from the primitive `P` the route named.
pub fn from_primitive<B: Backend, const D: usize, P: 'static>(value: P) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(cast(value)))
}

/// The tensor laid out contiguously (a reference-count bump when it already is).
pub fn contiguous(tensor: &FlexTensor) -> FlexTensor {
    tensor.to_contiguous()
}

/// The elements of a contiguous f32 tensor.
pub fn values(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("flex_bridge: contiguous f32 tensor")
}

pub fn dims<const D: usize>(tensor: &FlexTensor) -> [usize; D] {
    let shape = tensor.layout().shape();
    assert_eq!(shape.num_dims(), D, "flex_bridge: expected {D} dimensions");
    std::array::from_fn(|i| shape[i])
}

pub fn flex_tensor<const D: usize>(values: Vec<f32>, dims: [usize; D]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(Shape::from(dims)),
        DType::F32,
    )
}

/// Puts `output`, computed from `parents` by a routed op, on the autodiff graph with `op` as its
/// backward step. When a parent needs a gradient, the parents at positions `keep` are kept for
/// the backward pass and `state` builds the op's state from their node ids, in `keep`'s order.
pub fn record<BO, const N: usize>(
    op: BO,
    parents: [&AutodiffFlexTensor; N],
    keep: &[usize],
    state: impl FnOnce(Vec<NodeId>) -> BO::State,
    output: FlexTensor,
) -> AutodiffFlexTensor
where
    BO: Backward<Flex, N>,
{
    match op
        .prepare::<NoCheckpointing>(parents.map(|p| p.node.clone()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let ids = keep.iter().map(|&i| prep.checkpoint(parents[i])).collect();
            prep.finish(state(ids), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// A tensor `record` kept for the backward pass, laid out contiguously.
pub fn kept(checkpointer: &mut Checkpointer, id: NodeId) -> FlexTensor {
    contiguous(&checkpointer.retrieve_node_output::<FlexTensor>(id))
}
