//! Where a worker computes gradients: `cpu` (NdArray, always there) or
//! `cuda:N` (burn-cuda, with `--features cuda`). burn-cuda panics on first
//! use without a driver; we look for libcuda first and say so plainly.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Device::Cuda(n)),
                _ => Err(format!("unknown device `{s}`: use cpu or cuda:N")),
            },
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Whether the CUDA driver library is installed (without loading it).
pub fn cuda_driver_present() -> bool {
    let names = ["libcuda.so.1", "libcuda.so"];
    let mut dirs: Vec<String> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(String::from)
        .collect();
    dirs.extend(
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/cuda/lib64",
            "/usr/local/cuda/compat",
            "/usr/lib/wsl/lib",
            "/usr/local/nvidia/lib64",
        ]
        .map(String::from),
    );
    dirs.iter().any(|d| names.iter().any(|n| std::path::Path::new(d).join(n).exists()))
}

/// Checks that `device` can be used by this binary on this machine.
pub fn check(device: Device) -> Result<(), String> {
    match device {
        Device::Cpu => Ok(()),
        Device::Cuda(_) if !cfg!(feature = "cuda") => {
            Err("this negotium was built without CUDA support: rebuild with `--features cuda`, or use --device cpu"
                .into())
        }
        Device::Cuda(_) if !cuda_driver_present() => {
            Err("no CUDA driver found (libcuda.so.1 is not installed); use --device cpu".into())
        }
        Device::Cuda(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!("cuda:1".parse(), Ok(Device::Cuda(1)));
        assert!("gpu".parse::<Device>().is_err());
        if !cuda_driver_present() {
            let err = check(Device::Cuda(0)).unwrap_err();
            assert!(err.contains("CUDA"), "{err}");
        }
    }
}
