//! The `gradient` comparator: β (α = softmax(β)) learned by backpropagation, jointly with the
//! network, on the same training loss `Σ_l softmax(β)_l · L_l` (Eq. 4), by its own Adam with the
//! network's learning rate.
//!
//! The paper describes the comparator only as α learned as trainable parameters; descending the
//! training loss itself (Eq. 4 with α = softmax(β)) is the direct reading, and it explains the
//! comparator's weakness: lowering the weight of the head whose loss is largest always lowers the total, so α
//! drifts towards whichever head is easiest to fit rather than towards what validates best.

use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::activation::softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};

use super::epoch::{batch_tensors, epoch_batches, EpochSettings};
use super::loss::hybrid;
use super::samples::Sample;
use crate::das::controller::LAYERS;
use crate::das::weighting::LearnedBeta;
use crate::model::unet::UNet;
use crate::progress::Progress;

/// One epoch training the network and β together; returns the model, the mean loss and β.
pub fn train_epoch_learning_alpha<B, O>(
    mut model: UNet<B>,
    optimizer: &mut O,
    samples: &[Sample],
    settings: &EpochSettings,
    mut beta: LearnedBeta,
    device: &B::Device,
    progress: &dyn Progress,
) -> (UNet<B>, f64, LearnedBeta)
where
    B: AutodiffBackend,
    O: Optimizer<UNet<B>, B>,
{
    let (mut total, mut batches) = (0.0, 0usize);
    for chunk in epoch_batches(samples, settings) {
        let refs: Vec<&Sample> = chunk.iter().collect();
        let (x, y) = batch_tensors::<B>(&refs, device);
        let heads = model.forward(x);
        let beta_tensor = Tensor::<B, 1>::from_data(
            TensorData::new(beta.beta.map(|b| b as f32).to_vec(), [LAYERS]),
            device,
        )
        .require_grad();
        let alpha = softmax(beta_tensor.clone(), 0);
        let loss = heads
            .iter()
            .enumerate()
            .map(|(l, head)| {
                alpha.clone().narrow(0, l, 1) * hybrid(head.clone(), y.clone(), &settings.loss)
            })
            .reduce(|a, b| a + b)
            .expect("four heads");
        total += loss.clone().into_scalar().elem::<f64>();
        batches += 1;
        let mut grads = loss.backward();
        let beta_grad: Vec<f64> = beta_tensor
            .grad_remove(&mut grads)
            .map(|g| {
                g.into_data()
                    .convert::<f64>()
                    .to_vec()
                    .expect("f64 gradient")
            })
            .unwrap_or_else(|| vec![0.0; LAYERS]);
        beta.step(
            std::array::from_fn(|l| beta_grad[l]),
            settings.learning_rate,
        );
        let grads = GradientsParams::from_grads(grads, &model);
        model = optimizer.step(settings.learning_rate, model, grads);
        progress.advance(chunk.len() as u64);
    }
    (model, total / batches.max(1) as f64, beta)
}
