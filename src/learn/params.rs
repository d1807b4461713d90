//! Parameters and gradients as flat `Vec<f32>` in module traversal order:
//! what the parameter server, the wire and checkpoints carry.
//!
//! ParamIds are random per `init`, so a gradient keyed by another process'
//! ids would be silently ignored by a burn optimizer. We never ship ids:
//! vectors are exchanged in traversal order and rebuilt against the local
//! module, and the optimizer (Adam in [`super::ps`]) works on the flat
//! vector itself.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

struct Flatten {
    out: Vec<f32>,
}

impl<B: Backend> ModuleVisitor<B> for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.out.extend(param.val().into_data().iter::<f32>());
    }
}

/// Every float parameter, in traversal order.
pub fn flatten<B: Backend, M: Module<B>>(module: &M) -> Vec<f32> {
    let mut v = Flatten { out: Vec::new() };
    module.visit(&mut v);
    v.out
}

struct Load<'a, B: Backend> {
    data: &'a [f32],
    pos: usize,
    device: B::Device,
}

impl<B: Backend> ModuleMapper<B> for Load<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let chunk = self.data[self.pos..self.pos + n].to_vec();
        self.pos += n;
        let mut fresh = Tensor::<B, D>::from_data(TensorData::new(chunk, shape), &self.device);
        if tensor.is_require_grad() {
            fresh = fresh.require_grad();
        }
        // The id is kept: the module stays the same module with new values.
        Param::from_mapped_value(id, fresh, mapper)
    }
}

/// The module with its parameters replaced by `data` (traversal order).
/// Vectors come from files and from the network (a checkpoint, a remote
/// parameter server's assignment): one of another length is an error.
pub fn load<B: Backend, M: Module<B>>(module: M, data: &[f32], device: &B::Device) -> Result<M, String> {
    let n = module.num_params();
    if data.len() != n {
        return Err(format!("{} parameter values for a model of {n}", data.len()));
    }
    let mut m = Load::<B> { data, pos: 0, device: device.clone() };
    Ok(module.map(&mut m))
}

struct Shapes {
    out: Vec<Vec<usize>>,
}

impl<B: Backend> ModuleVisitor<B> for Shapes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.out.push(param.val().shape().to_vec());
    }
}

/// The shape of every float parameter, in traversal order: what tells a
/// record loaded from a file apart from the model its spec describes.
pub fn shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    let mut v = Shapes { out: Vec::new() };
    module.visit(&mut v);
    v.out
}

struct Grads<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    out: Vec<f32>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Grads<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        match value.grad(self.grads) {
            Some(g) => self.out.extend(g.into_data().iter::<f32>()),
            None => self.out.extend(std::iter::repeat_n(0.0, value.shape().num_elements())),
        }
    }
}

/// Gradients of every float parameter, in traversal order (zero where a
/// parameter took no part in the loss).
pub fn gradients<B: AutodiffBackend, M: Module<B>>(module: &M, grads: &B::Gradients) -> Vec<f32> {
    let mut v = Grads::<B> { grads, out: Vec::new() };
    module.visit(&mut v);
    v.out
}
