#include <pybind11/stl.h>
#include <cstring>
#include <optional>
#include <vector>
#include "bindings/common.h"
#include "cuda/api.h"
#include "ntt.h"
#include "errors.h"
#include "gpu_check.h"
#include "multiparty.h"
#include "wire.h"

namespace fhto
{
    namespace bindings
    {
        namespace
        {
            using Words = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;

            Seed seed_from_bytes(const py::bytes &b)
            {
                std::string s = b;
                if (s.size() != 64)
                {
                    throw ParameterError("a seed is 64 bytes; got " + std::to_string(s.size()));
                }
                Seed seed;
                std::memcpy(seed.data(), s.data(), 64);
                return seed;
            }

            std::vector<std::uint64_t> to_vector(const Words &w)
            {
                return std::vector<std::uint64_t>(w.data(), w.data() + w.size());
            }

            Words to_array(const std::vector<std::uint64_t> &v)
            {
                Words out(static_cast<py::ssize_t>(v.size()));
                std::memcpy(out.mutable_data(), v.data(), v.size() * 8);
                return out;
            }
        } // namespace

        void bind_multiparty(py::module_ &m)
        {
            py::class_<Ring>(m, "Ring")
                .def(
                    py::init([](std::size_t n, const std::vector<int> &bits, int scale_bits, Packing packing) {
                        Params p;
                        p.poly_modulus_degree = n;
                        p.coeff_modulus_bits = bits;
                        p.scale_bits = scale_bits;
                        p.packing = packing;
                        return Ring(p);
                    }),
                    py::arg("poly_modulus_degree"), py::arg("coeff_modulus_bits"), py::arg("scale_bits"), py::arg("packing"))
                .def_property_readonly("n", &Ring::n)
                .def_property_readonly(
                    "key_moduli",
                    [](const Ring &r) {
                        std::vector<std::uint64_t> v;
                        for (const auto &q : r.key_moduli())
                        {
                            v.push_back(q.value());
                        }
                        return v;
                    })
                .def_property_readonly("data_moduli", [](const Ring &r) {
                    std::vector<std::uint64_t> v;
                    for (const auto &q : r.data_moduli())
                    {
                        v.push_back(q.value());
                    }
                    return v;
                });

            m.def(
                "mp_common_polynomial",
                [](const Ring &ring, const py::bytes &seed) {
                    Seed s = seed_from_bytes(seed);
                    std::vector<std::uint64_t> a;
                    {
                        py::gil_scoped_release release;
                        a = common_polynomial(ring, s);
                    }
                    return to_array(a);
                },
                py::arg("ring"), py::arg("seed"));

            m.def(
                "mp_generate_key_share",
                [](const Ring &ring, const Words &a, std::optional<py::bytes> seed) {
                    std::optional<Seed> s;
                    if (seed)
                    {
                        s = seed_from_bytes(*seed);
                    }
                    std::vector<std::uint64_t> secret, pub;
                    auto av = to_vector(a);
                    {
                        py::gil_scoped_release release;
                        generate_key_share(ring, av, s, secret, pub);
                    }
                    auto out = py::make_tuple(to_array(secret), to_array(pub));
                    std::fill(secret.begin(), secret.end(), 0);
                    return out;
                },
                py::arg("ring"), py::arg("a"), py::arg("seed") = py::none());

            m.def(
                "mp_collective_context",
                [](const Ring &ring, const Words &a, const std::vector<Words> &shares) {
                    std::vector<const std::uint64_t *> ptrs;
                    const std::size_t want = static_cast<std::size_t>(a.size());
                    for (const auto &s : shares)
                    {
                        if (static_cast<std::size_t>(s.size()) != want)
                        {
                            throw ParameterError("a public share has the wrong length for these parameters");
                        }
                        ptrs.push_back(s.data());
                    }
                    auto av = to_vector(a);
                    py::gil_scoped_release release;
                    return collective_context(ring, av, ptrs);
                },
                py::arg("ring"), py::arg("a"), py::arg("public_shares"));

            m.def(
                "mp_shamir_split",
                [](const Ring &ring, const Words &secret, std::size_t limbs, std::size_t t,
                   const std::vector<std::uint64_t> &xs, const py::bytes &seed) {
                    if (static_cast<std::size_t>(secret.size()) != limbs * ring.n())
                    {
                        throw ParameterError("the secret has the wrong length for its limbs");
                    }
                    Seed s = seed_from_bytes(seed);
                    std::vector<std::vector<std::uint64_t>> rows;
                    {
                        py::gil_scoped_release release;
                        rows = shamir_split(ring, secret.data(), limbs, t, xs, s);
                    }
                    std::vector<Words> out;
                    for (auto &r : rows)
                    {
                        out.push_back(to_array(r));
                        std::fill(r.begin(), r.end(), 0);
                    }
                    return out;
                },
                py::arg("ring"), py::arg("secret"), py::arg("limbs"), py::arg("t"), py::arg("xs"), py::arg("seed"));

            m.def(
                "mp_tag",
                [](const Context &c, const py::buffer &batch_bytes, const py::bytes &round_key, std::size_t repetitions,
                   int threads) {
                    ByteView v = byte_view(batch_bytes, "batch");
                    const BatchView batch = parse_batch(c, v.data, v.size);
                    Seed key = seed_from_bytes(round_key);
                    std::vector<std::uint64_t> tag;
                    {
                        py::gil_scoped_release release;
                        tag = contribution_tag(c, batch, key, repetitions, threads);
                    }
                    return tag;
                },
                py::arg("context"), py::arg("batch"), py::arg("round_key"), py::arg("repetitions"), py::arg("threads") = 0);
            m.def(
                "mp_check_asymmetric_against_seal",
                [](const Context &c, std::size_t trials) {
                    py::gil_scoped_release release;
                    return check_asymmetric_against_seal(c, trials);
                },
                py::arg("context"), py::arg("trials"));
            m.def(
                "ntt_check",
                [](const Context &c, std::size_t trials) {
                    py::gil_scoped_release release;
                    return check_engine_ntt(c, trials);
                },
                py::arg("context"), py::arg("trials"),
                "Bit-for-bit comparison of the engine's NTT with SEAL's on random polynomials.");
            m.def("ntt_backend", &ntt_backend, "The engine's NTT path on this CPU: avx512, avx512vl or scalar.");
            m.def("cuda_compiled", &cuda::compiled, "Whether this build has the CUDA path.");
            m.def("cuda_device_count", &cuda::device_count, "Usable CUDA devices now (0 without a GPU or driver).");
            m.def("cuda_device_name", &cuda::device_name);
            m.def(
                "cuda_check_ntt_host",
                [](const Context &c, std::size_t trials) {
                    py::gil_scoped_release release;
                    return check_cuda_ntt_host(c, trials);
                },
                py::arg("context"), py::arg("trials"));
            m.def(
                "cuda_check_blake2",
                [](std::size_t trials, bool device) {
                    py::gil_scoped_release release;
                    return check_cuda_blake2(trials, device);
                },
                py::arg("trials"), py::arg("device"));
            m.def(
                "cuda_check_uniform",
                [](const Context &c, std::size_t trials, bool device) {
                    py::gil_scoped_release release;
                    return check_cuda_uniform(c, trials, device);
                },
                py::arg("context"), py::arg("trials"), py::arg("device"));
            m.def(
                "cuda_check_sampling_host",
                [](const Context &c, std::size_t trials) {
                    py::gil_scoped_release release;
                    return check_cuda_sampling_host(c, trials);
                },
                py::arg("context"), py::arg("trials"));
            m.def(
                "cuda_check_ntt_device",
                [](const Context &c, std::size_t trials) {
                    py::gil_scoped_release release;
                    return check_cuda_ntt_device(c, trials);
                },
                py::arg("context"), py::arg("trials"));
            m.def("mp_share_word_bits", &share_word_bits, py::arg("context"), py::arg("round_bits"));
            m.def(
                "mp_share_payload_bytes", &share_payload_bytes, py::arg("context"), py::arg("ciphertexts"),
                py::arg("round_bits"));

            m.def(
                "mp_decryption_share",
                [](const Context &c, const py::buffer &batch_bytes, const Words &secret,
                   const std::vector<std::uint64_t> &lambda, int flood_bits, int round_bits,
                   std::optional<std::uint64_t> seed, int threads) {
                    ByteView v = byte_view(batch_bytes, "batch");
                    const BatchView batch = parse_batch(c, v.data, v.size);
                    ShareOptions options;
                    options.flood_bits = flood_bits;
                    options.round_bits = round_bits;
                    options.seed = seed;
                    options.threads = threads;
                    const std::size_t size =
                        share_payload_bytes(c, static_cast<std::size_t>(batch.header.ciphertext_count), round_bits);
                    std::uint8_t *out = nullptr;
                    py::bytes result = new_bytes(size, out);
                    {
                        py::gil_scoped_release release;
                        decryption_share_into(
                            c, batch, secret.data(), static_cast<std::size_t>(secret.size()), lambda, options, out, size);
                    }
                    return result;
                },
                py::arg("context"), py::arg("batch"), py::arg("secret"), py::arg("lambda_"), py::arg("flood_bits"),
                py::arg("round_bits"), py::arg("seed") = py::none(), py::arg("threads") = 0);

            m.def(
                "mp_combine",
                [](const Context &c, const py::buffer &batch_bytes, const std::vector<py::buffer> &shares,
                   int round_bits, int threads) {
                    ByteView v = byte_view(batch_bytes, "batch");
                    const BatchView batch = parse_batch(c, v.data, v.size);
                    std::vector<ByteView> views;
                    std::vector<const std::uint8_t *> ptrs;
                    std::size_t size = 0;
                    for (const auto &s : shares)
                    {
                        views.push_back(byte_view(s, "share"));
                    }
                    for (std::size_t i = 0; i < views.size(); i++)
                    {
                        if (i && views[i].size != size)
                        {
                            throw ParameterError("shares of different sizes");
                        }
                        size = views[i].size;
                        ptrs.push_back(views[i].data);
                    }
                    py::array_t<double> out(static_cast<py::ssize_t>(batch.header.value_count));
                    double *dst = out.mutable_data();
                    const std::size_t count = static_cast<std::size_t>(batch.header.value_count);
                    {
                        py::gil_scoped_release release;
                        combine_shares_into(c, batch, ptrs, size, round_bits, dst, count, threads);
                    }
                    return out;
                },
                py::arg("context"), py::arg("batch"), py::arg("shares"), py::arg("round_bits"), py::arg("threads") = 0);
        }
    } // namespace bindings
} // namespace fhto
