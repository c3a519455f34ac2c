// The CUDA path's encryption: numpy arrays (host memory) and raw device pointers taken from
// objects with __cuda_array_interface__ (checked in Python first, and here against the driver).

#include <optional>
#include <pybind11/stl.h>
#include "bindings/common.h"
#include "cuda/api.h"
#include "errors.h"
#include "gpu_decrypt.h"
#include "gpu_encrypt.h"
#include "gpu_sum.h"

namespace fhto
{
    namespace bindings
    {
        namespace
        {
            EncryptOptions options_of(Packing packing, double weight, std::uint32_t parties, int threads, std::optional<std::uint64_t> seed)
            {
                EncryptOptions options;
                options.mode = Mode::symmetric;
                options.packing = packing;
                options.weight = weight;
                options.parties = parties;
                options.threads = threads;
                options.seed = seed;
                return options;
            }

            template <typename T>
            py::bytes encrypt_cuda(const Context &c, const T *values, std::size_t count, const EncryptOptions &options, const CudaTarget &target)
            {
                if (count == 0)
                {
                    throw ParameterError("cannot encrypt an empty update");
                }
                std::uint8_t *out = nullptr;
                const std::size_t size = encrypted_size(c, count, options.mode, options.packing);
                py::bytes result = new_bytes(size, out);
                {
                    py::gil_scoped_release release;
                    encrypt_into_cuda(c, values, count, options, target, out, size);
                }
                return result;
            }
        } // namespace

        void bind_cuda(py::module_ &m)
        {
            m.def(
                "cuda_encrypt",
                [](const Context &c, const py::array &values, Packing packing, double weight, std::uint32_t parties,
                   int threads, std::optional<std::uint64_t> seed, int device) {
                    const EncryptOptions options = options_of(packing, weight, parties, threads, seed);
                    CudaTarget target;
                    target.host_driver = device < 0;
                    target.device = device < 0 ? 0 : device;
                    if (values.ndim() != 1)
                    {
                        throw py::value_error("values must be one-dimensional");
                    }
                    if (values.dtype().is(py::dtype::of<float>()))
                    {
                        auto a = py::array_t<float, py::array::c_style>::ensure(values);
                        return encrypt_cuda<float>(c, a.data(), static_cast<std::size_t>(a.size()), options, target);
                    }
                    if (values.dtype().is(py::dtype::of<double>()))
                    {
                        auto a = py::array_t<double, py::array::c_style>::ensure(values);
                        return encrypt_cuda<double>(c, a.data(), static_cast<std::size_t>(a.size()), options, target);
                    }
                    throw py::type_error("values must be float32 or float64");
                },
                py::arg("context"), py::arg("values"), py::arg("packing"), py::arg("weight"), py::arg("parties"),
                py::arg("threads"), py::arg("seed"), py::arg("device"),
                "Secret-key encryption of host values on the CUDA path: on `device`, or with device = -1 by "
                "the kernels' code run on the CPU (the host driver).");
            m.def(
                "cuda_encrypt_pointer",
                [](const Context &c, std::uintptr_t pointer, int dtype_bytes, std::size_t count, Packing packing,
                   double weight, std::uint32_t parties, std::optional<std::uint64_t> seed, int device) {
                    const EncryptOptions options = options_of(packing, weight, parties, 0, seed);
                    CudaTarget target;
                    target.device = device;
                    target.values_on_device = true;
                    if (cuda::pointer_device(reinterpret_cast<const void *>(pointer)) != device)
                    {
                        throw DeviceError(
                            "the values are not in the memory of CUDA device " + std::to_string(device) +
                            " (a tensor on another device, or host memory)");
                    }
                    if (dtype_bytes == 4)
                    {
                        return encrypt_cuda<float>(c, reinterpret_cast<const float *>(pointer), count, options, target);
                    }
                    if (dtype_bytes == 8)
                    {
                        return encrypt_cuda<double>(c, reinterpret_cast<const double *>(pointer), count, options, target);
                    }
                    throw py::type_error("values must be float32 or float64");
                },
                py::arg("context"), py::arg("pointer"), py::arg("dtype_bytes"), py::arg("count"), py::arg("packing"),
                py::arg("weight"), py::arg("parties"), py::arg("seed"), py::arg("device"),
                "Secret-key encryption of values already in device memory (a CUDA tensor's data pointer).");
            m.def(
                "cuda_decrypt",
                [](const Context &c, const py::buffer &buffer, int device, int threads) -> py::object {
                    ByteView v = byte_view(buffer, "data");
                    c.decryptor(); // a public context fails here, before any allocation
                    const BatchView batch = parse_batch(c, v.data, v.size);
                    py::array_t<double> out(static_cast<py::ssize_t>(batch.header.value_count));
                    double *dst = out.mutable_data();
                    const std::size_t n = static_cast<std::size_t>(batch.header.value_count);
                    bool done = false;
                    {
                        py::gil_scoped_release release;
                        done = decrypt_into_cuda(c, batch, dst, n, device < 0, device < 0 ? 0 : device, threads);
                    }
                    if (!done)
                    {
                        return py::none();
                    }
                    return std::move(out);
                },
                py::arg("context"), py::arg("data"), py::arg("device"), py::arg("threads"),
                "Decryption and decoding of a batch on the CUDA path (device = -1: the host driver); None when a "
                "record is not in the form the CUDA path reads.");
            m.def(
                "cuda_sum",
                [](const Context &c, const std::vector<py::buffer> &batches, int device, int threads,
                   std::optional<Packing> packing) -> py::object {
                    std::vector<ByteView> views;
                    std::vector<std::pair<const std::uint8_t *, std::size_t>> spans;
                    for (const auto &b : batches)
                    {
                        views.push_back(byte_view(b, "update"));
                        spans.emplace_back(views.back().data, views.back().size);
                    }
                    std::optional<SumResult> result;
                    {
                        py::gil_scoped_release release;
                        result = sum_cuda(c, spans, device < 0, device < 0 ? 0 : device, threads);
                    }
                    if (!result)
                    {
                        return py::none();
                    }
                    const Packing out_packing = packing ? *packing : c.params().packing;
                    std::uint8_t *out = nullptr;
                    const std::size_t size = result->serialized_size(c, out_packing);
                    py::bytes bytes = new_bytes(size, out);
                    {
                        py::gil_scoped_release release;
                        result->serialize_into(c, out, size, out_packing, threads == 0 ? 0 : threads);
                    }
                    return std::move(bytes);
                },
                py::arg("context"), py::arg("batches"), py::arg("device"), py::arg("threads"), py::arg("packing"),
                "The sum of seeded secret-key batches on the CUDA path (device = -1: the host driver), as a sum "
                "batch; None when some batch is not in the form the CUDA path adds.");
        }
    } // namespace bindings
} // namespace fhto
