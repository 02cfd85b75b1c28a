//! Element-wise arithmetic with broadcasting, and unary maps.
//!
//! Binary: `add`, `sub`, `mul`, `div`, `maximum`; their inputs broadcast by
//! NumPy rules, and backward sums each gradient back to its input's shape.
//! `∂(a/b)/∂b = −a/b²`; `maximum` splits the gradient in half on ties, as
//! PyTorch does. Unary: `neg`, `exp`, `log`, `sqrt`, `powf`, `abs`, `clamp`,
//! `add_scalar`, `mul_scalar`, with `d|x|/dx = sign(x)` (0 at 0) and clamp
//! passing the gradient where `min < x < max` (0 on the bounds, as PyTorch 2.x).
//!
//! Uses: `tensor`, `kernels::elementwise`.

use super::share_gradient;
use crate::kernels::elementwise::{broadcast_zip, expand, map, sum_to_shape, zip_map};
use crate::tensor::{broadcast_shapes, Backward, Tensor};

#[derive(Clone, Copy, Debug)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
}

impl Binary {
    fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Maximum => "maximum",
        }
    }
    fn apply(self, x: f32, y: f32) -> f32 {
        match self {
            Binary::Add => x + y,
            Binary::Sub => x - y,
            Binary::Mul => x * y,
            Binary::Div => x / y,
            Binary::Maximum => {
                if x.is_nan() || y.is_nan() {
                    f32::NAN
                } else {
                    x.max(y)
                }
            }
        }
    }
}

fn binary(a: &Tensor, b: &Tensor, op: Binary) -> Tensor {
    let Some(shape) = broadcast_shapes(a.shape(), b.shape()) else {
        panic!("{}: shapes {:?} and {:?} cannot be broadcast together", op.name(), a.shape(), b.shape());
    };
    let out = broadcast_zip(&a.data(), a.shape(), &b.data(), b.shape(), &shape, |x, y| op.apply(x, y));
    Tensor::from_op(out, &shape, &[a, b], BinaryBackward { op, out_shape: shape.clone() })
}

struct BinaryBackward {
    op: Binary,
    out_shape: Vec<usize>,
}

impl Backward for BinaryBackward {
    fn name(&self) -> &'static str {
        self.op.name()
    }
    fn reads_input(&self, _i: usize) -> bool {
        !matches!(self.op, Binary::Add | Binary::Sub)
    }
    fn reads_output(&self) -> bool {
        false
    }
    fn backward(&self, inputs: &[Tensor], _out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let full = |t: &Tensor| expand(&t.data(), t.shape(), &self.out_shape);
        // Gradients with respect to the broadcast operands, shape `out_shape`.
        let (ga, gb): (Option<Vec<f32>>, Option<Vec<f32>>) = match self.op {
            Binary::Add => (Some(g.to_vec()), Some(g.to_vec())),
            Binary::Sub => (Some(g.to_vec()), Some(map(g, |v| -v))),
            Binary::Mul => (
                a.is_requires_grad().then(|| zip_map(g, &full(b), |g, y| g * y)),
                b.is_requires_grad().then(|| zip_map(g, &full(a), |g, x| g * x)),
            ),
            Binary::Div => {
                let bf = full(b);
                let ga = a.is_requires_grad().then(|| zip_map(g, &bf, |g, y| g / y));
                let gb = b.is_requires_grad().then(|| {
                    let ab = zip_map(&full(a), &bf, |x, y| -x / (y * y));
                    zip_map(g, &ab, |g, d| g * d)
                });
                (ga, gb)
            }
            Binary::Maximum => {
                // 1 where this operand wins, 1/2 on ties, 0 where it loses.
                let share = zip_map(&full(a), &full(b), |x, y| {
                    if x > y {
                        1.0
                    } else if x == y {
                        0.5
                    } else {
                        0.0
                    }
                });
                (Some(zip_map(g, &share, |g, s| g * s)), Some(zip_map(g, &share, |g, s| g * (1.0 - s))))
            }
        };
        vec![
            ga.filter(|_| a.is_requires_grad()).map(|ga| sum_to_shape(&ga, &self.out_shape, a.shape())),
            gb.filter(|_| b.is_requires_grad()).map(|gb| sum_to_shape(&gb, &self.out_shape, b.shape())),
        ]
    }
    fn backward_owned(&self, inputs: &[Tensor], out: &[f32], g: Vec<f32>) -> Vec<Option<Vec<f32>>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let unbroadcast = a.shape() == self.out_shape && b.shape() == self.out_shape;
        if !unbroadcast || !matches!(self.op, Binary::Add | Binary::Sub) {
            return self.backward(inputs, out, &g);
        }
        // ∂(a ± b)/∂a = 1 and ∂/∂b = ±1.
        let mut grads = share_gradient(g, inputs);
        if let (Binary::Sub, Some(gb)) = (self.op, &mut grads[1]) {
            gb.iter_mut().for_each(|v| *v = -*v);
        }
        grads
    }
}

#[derive(Clone, Copy, Debug)]
enum Unary {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Powf(f32),
    Clamp(f32, f32),
    AddScalar(f32),
    MulScalar(f32),
}

impl Unary {
    fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Abs => "abs",
            Unary::Powf(_) => "powf",
            Unary::Clamp(..) => "clamp",
            Unary::AddScalar(_) => "add_scalar",
            Unary::MulScalar(_) => "mul_scalar",
        }
    }
    fn apply(self, x: f32) -> f32 {
        match self {
            Unary::Neg => -x,
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Abs => x.abs(),
            Unary::Powf(p) => x.powf(p),
            Unary::Clamp(lo, hi) => x.max(lo).min(hi),
            Unary::AddScalar(c) => x + c,
            Unary::MulScalar(c) => x * c,
        }
    }
    /// `∂out/∂x` from the input `x` and the output `y`.
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Unary::Neg => -1.0,
            Unary::Exp => y,
            Unary::Log => 1.0 / x,
            Unary::Sqrt => 0.5 / y,
            Unary::Abs => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Unary::Powf(p) => {
                if p == 0.0 {
                    0.0
                } else {
                    p * x.powf(p - 1.0)
                }
            }
            Unary::Clamp(lo, hi) => {
                if x > lo && x < hi {
                    1.0
                } else {
                    0.0
                }
            }
            Unary::AddScalar(_) => 1.0,
            Unary::MulScalar(c) => c,
        }
    }
}

fn unary(x: &Tensor, op: Unary) -> Tensor {
    let out = map(&x.data(), |v| op.apply(v));
    Tensor::from_op(out, x.shape(), &[x], UnaryBackward(op))
}

struct UnaryBackward(Unary);

impl Backward for UnaryBackward {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn backward(&self, inputs: &[Tensor], out: &[f32], g: &[f32]) -> Vec<Option<Vec<f32>>> {
        let x = inputs[0].data();
        let dydx = zip_map(&x, out, |x, y| self.0.derivative(x, y));
        vec![Some(zip_map(g, &dydx, |g, d| g * d))]
    }
}

impl Tensor {
    /// `self + other`, broadcasting (`torch.add`).
    pub fn add(&self, other: &Tensor) -> Tensor {
        binary(self, other, Binary::Add)
    }
    /// `self − other`, broadcasting (`torch.sub`).
    pub fn sub(&self, other: &Tensor) -> Tensor {
        binary(self, other, Binary::Sub)
    }
    /// `self ⊙ other`, broadcasting (`torch.mul`).
    pub fn mul(&self, other: &Tensor) -> Tensor {
        binary(self, other, Binary::Mul)
    }
    /// `self / other`, broadcasting (`torch.div`).
    pub fn div(&self, other: &Tensor) -> Tensor {
        binary(self, other, Binary::Div)
    }
    /// Element-wise maximum, broadcasting (`torch.maximum`); ties split the gradient.
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        binary(self, other, Binary::Maximum)
    }
    /// `−x`.
    pub fn neg(&self) -> Tensor {
        unary(self, Unary::Neg)
    }
    /// `eˣ`.
    pub fn exp(&self) -> Tensor {
        unary(self, Unary::Exp)
    }
    /// Natural logarithm.
    pub fn log(&self) -> Tensor {
        unary(self, Unary::Log)
    }
    /// `√x`.
    pub fn sqrt(&self) -> Tensor {
        unary(self, Unary::Sqrt)
    }
    /// `|x|`; its gradient at 0 is 0.
    pub fn abs(&self) -> Tensor {
        unary(self, Unary::Abs)
    }
    /// `xᵖ` for a constant exponent (`torch.pow(x, p)`).
    pub fn powf(&self, p: f32) -> Tensor {
        unary(self, Unary::Powf(p))
    }
    /// `min(max(x, lo), hi)` (`torch.clamp`); the gradient passes where `lo < x < hi`.
    pub fn clamp(&self, lo: f32, hi: f32) -> Tensor {
        unary(self, Unary::Clamp(lo, hi))
    }
    /// `x + c`.
    pub fn add_scalar(&self, c: f32) -> Tensor {
        unary(self, Unary::AddScalar(c))
    }
    /// `c · x`.
    pub fn mul_scalar(&self, c: f32) -> Tensor {
        unary(self, Unary::MulScalar(c))
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_close, gradcheck, Fixtures};
    use crate::{Rng, Tensor};

    #[test]
    fn binary_ops_match_pytorch_with_broadcasting_both_ways() {
        let fx = Fixtures::load("elementwise");
        for case in fx.cases("binary") {
            let (a, b) = (fx.param(&case, "a"), fx.param(&case, "b"));
            let out = match case.attr("op") {
                "add" => a.add(&b),
                "sub" => a.sub(&b),
                "mul" => a.mul(&b),
                "div" => a.div(&b),
                "maximum" => a.maximum(&b),
                other => panic!("unknown op {other}"),
            };
            fx.check_forward_backward(&case, &out, &[("a", &a), ("b", &b)]);
        }
    }

    #[test]
    fn unary_ops_match_pytorch() {
        let fx = Fixtures::load("elementwise");
        for case in fx.cases("unary") {
            let x = fx.param(&case, "x");
            let out = match case.attr("op") {
                "neg" => x.neg(),
                "exp" => x.exp(),
                "log" => x.log(),
                "sqrt" => x.sqrt(),
                "abs" => x.abs(),
                "powf" => x.powf(case.attr_f32("p")),
                "clamp" => x.clamp(case.attr_f32("lo"), case.attr_f32("hi")),
                other => panic!("unknown op {other}"),
            };
            fx.check_forward_backward(&case, &out, &[("x", &x)]);
        }
    }

    /// Addition and subtraction hand `gout`'s buffer to an operand: each
    /// operand that needs a gradient gets its own, and one used twice the sum.
    #[test]
    fn add_and_sub_give_each_operand_its_gradient() {
        let g = Tensor::from_vec(vec![1.0, -2.0, 3.0], &[3]);
        let (plus, minus) = (Some(vec![1.0, -2.0, 3.0]), Some(vec![-1.0, 2.0, -3.0]));
        for (need_a, need_b) in [(true, false), (false, true), (true, true)] {
            let leaf = |on: bool| if on { Tensor::zeros(&[3]).requires_grad() } else { Tensor::zeros(&[3]) };
            let grads = |a: &Tensor, b: &Tensor| (a.grad().map(|t| t.to_vec()), b.grad().map(|t| t.to_vec()));
            let (a, b) = (leaf(need_a), leaf(need_b));
            a.add(&b).backward_with(&g);
            assert_eq!(grads(&a, &b), (plus.clone().filter(|_| need_a), plus.clone().filter(|_| need_b)));
            let (a, b) = (leaf(need_a), leaf(need_b));
            a.sub(&b).backward_with(&g);
            assert_eq!(grads(&a, &b), (plus.clone().filter(|_| need_a), minus.clone().filter(|_| need_b)));
        }
        let x = Tensor::zeros(&[3]).requires_grad();
        x.add(&x).backward_with(&g);
        assert_eq!(x.grad().unwrap().to_vec(), [2.0, -4.0, 6.0]);
    }

    #[test]
    fn binary_gradcheck() {
        let mut rng = Rng::new(10);
        let a = Tensor::uniform(&[3, 1, 4], 0.5, 2.0, &mut rng);
        let b = Tensor::uniform(&[2, 1], 0.5, 2.0, &mut rng);
        gradcheck("add", &[a.clone(), b.clone()], |t| t[0].add(&t[1]), &mut rng);
        gradcheck("sub", &[a.clone(), b.clone()], |t| t[0].sub(&t[1]), &mut rng);
        gradcheck("mul", &[a.clone(), b.clone()], |t| t[0].mul(&t[1]), &mut rng);
        gradcheck("div", &[a.clone(), b.clone()], |t| t[0].div(&t[1]), &mut rng);
        gradcheck("maximum", &[a, b], |t| t[0].maximum(&t[1]), &mut rng);
    }

    #[test]
    fn unary_gradcheck() {
        let mut rng = Rng::new(11);
        let x = Tensor::uniform(&[2, 5], 0.3, 2.0, &mut rng);
        let s = Tensor::uniform(&[2, 5], -2.0, 2.0, &mut rng);
        gradcheck("exp", std::slice::from_ref(&s), |t| t[0].exp(), &mut rng);
        gradcheck("log", std::slice::from_ref(&x), |t| t[0].log(), &mut rng);
        gradcheck("sqrt", std::slice::from_ref(&x), |t| t[0].sqrt(), &mut rng);
        gradcheck("powf", std::slice::from_ref(&x), |t| t[0].powf(2.5), &mut rng);
        gradcheck("abs", std::slice::from_ref(&s), |t| t[0].abs(), &mut rng);
        gradcheck("clamp", std::slice::from_ref(&s), |t| t[0].clamp(-0.5, 0.7), &mut rng);
        gradcheck("neg", std::slice::from_ref(&s), |t| t[0].neg().mul_scalar(3.0).add_scalar(1.0), &mut rng);
    }

    #[test]
    #[should_panic(expected = "add: shapes [2, 3] and [4] cannot be broadcast together")]
    fn incompatible_shapes_name_the_op_and_both_shapes() {
        Tensor::zeros(&[2, 3]).add(&Tensor::zeros(&[4]));
    }

    #[test]
    fn maximum_splits_ties() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).requires_grad();
        let b = Tensor::from_vec(vec![1.0, 5.0, 0.0], &[3]).requires_grad();
        a.maximum(&b).sum_all().backward();
        assert_close("ga", &a.grad().unwrap().to_vec(), &[0.5, 0.0, 1.0], 0.0);
        assert_close("gb", &b.grad().unwrap().to_vec(), &[0.5, 1.0, 0.0], 0.0);
    }
}
