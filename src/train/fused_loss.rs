//! The hybrid loss (Eq. 3, or Eq. 1's Dice alone at λ_CE = 0) as one autodiff op on burn's CPU
//! backend (`kernels::hybrid_loss`): its value
//! and its logit gradient come out of one pass, instead of some thirty burn tensor ops and their
//! backward graph per supervised head.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::loss::LossConfig;
use crate::kernels::hybrid_loss::{self, HybridSettings, LossShape};
use crate::model::flex_bridge::{
    contiguous, dims, flex_tensor, from_primitive, primitive, record, values, AutodiffFlexTensor,
};

/// `Dice + λ·CE` of `logits` against `target`, for the autodiff CPU backend only (the caller
/// routes).
pub fn hybrid_fused<B: Backend>(
    logits: Tensor<B, 4>,
    target: Tensor<B, 3, Int>,
    config: &LossConfig,
) -> Tensor<B, 1> {
    let labels: Vec<i64> = target
        .into_data()
        .convert::<i64>()
        .into_vec()
        .expect("integer labels");
    from_primitive(autodiff_loss(primitive(logits), &labels, config))
}

#[derive(Debug)]
struct LossBackward;

impl Backward<Flex, 1> for LossBackward {
    /// The logit gradient for a unit upstream gradient, and its shape.
    type State = (Vec<f32>, [usize; 4]);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_logits] = ops.parents;
        let upstream = values(&contiguous(&grads.consume::<Flex>(&ops.node)))[0];
        let (mut grad, shape) = ops.state;
        if let Some(node) = node_logits {
            for g in &mut grad {
                *g *= upstream;
            }
            grads.register::<Flex>(node.id, flex_tensor(grad, shape));
        }
    }
}

fn autodiff_loss(
    logits: AutodiffFlexTensor,
    labels: &[i64],
    config: &LossConfig,
) -> AutodiffFlexTensor {
    let z = contiguous(&logits.primitive);
    let shape = dims::<4>(&z);
    let [batch, classes, h, w] = shape;
    let result = hybrid_loss::hybrid(
        values(&z),
        labels,
        &LossShape {
            batch,
            classes,
            pixels: h * w,
        },
        &HybridSettings {
            dice_smooth: config.dice_smooth,
            dice_background: config.dice_background,
            dice_sum: config.dice_sum,
            dice_batch: config.dice_batch,
            ce_weight: config.ce_weight,
        },
    );
    let output = flex_tensor(vec![result.loss as f32], [1]);
    let grad = result.grad;
    record(LossBackward, [&logits], &[], |_| (grad, shape), output)
}
