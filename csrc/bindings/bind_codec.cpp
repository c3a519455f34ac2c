#include <pybind11/stl.h>
#include <complex>
#include <optional>
#include <vector>
#include "aggregate.h"
#include "bytes.h"
#include "checksum.h"
#include "bindings/common.h"
#include "decrypt.h"
#include "encrypt.h"
#include "errors.h"
#include "prng.h"
#include "noise.h"
#include "symmetric.h"
#include "wire.h"

namespace fhto
{
    namespace bindings
    {
        namespace
        {
            template <typename T>
            py::bytes encrypt_typed(const Context &c, const py::array &values, const EncryptOptions &options)
            {
                auto arr = py::array_t<T, py::array::c_style>::ensure(values);
                if (!arr)
                {
                    throw py::type_error("values must be a contiguous float32 or float64 array");
                }
                const T *data = arr.data();
                const std::size_t count = static_cast<std::size_t>(arr.size());
                if (count == 0)
                {
                    throw ParameterError("cannot encrypt an empty update");
                }
                std::uint8_t *out = nullptr;
                const std::size_t size = encrypted_size(c, count, options.mode, options.packing);
                py::bytes result = new_bytes(size, out);
                {
                    py::gil_scoped_release release;
                    encrypt_into(c, data, count, options, out, size);
                }
                return result;
            }

            py::dict header_dict(const BatchHeader &h)
            {
                py::dict d;
                d["mode"] = h.mode;
                d["packing"] = h.packing;
                d["fingerprint"] = py::bytes(reinterpret_cast<const char *>(h.fingerprint.data()), h.fingerprint.size());
                d["value_count"] = h.value_count;
                d["ciphertext_count"] = h.ciphertext_count;
                d["ciphertext_bytes"] = h.ciphertext_bytes;
                d["contributions"] = h.contributions;
                d["party_budget"] = h.party_budget;
                d["batch_id"] = py::bytes(reinterpret_cast<const char *>(h.batch_id.data()), h.batch_id.size());
                return d;
            }
        } // namespace

        void bind_codec(py::module_ &m)
        {
            m.attr("BATCH_HEADER_BYTES") = kBatchHeaderBytes;

            m.def(
                "crc32c",
                [](const py::buffer &buffer, std::uint32_t crc) {
                    ByteView v = byte_view(buffer, "data");
                    py::gil_scoped_release release;
                    return crc32c(v.data, v.size, crc);
                },
                py::arg("data"), py::arg("crc") = 0, "CRC-32C of a bytes-like object (the wire format's checksum).");
            m.def("crc32c_backend", &crc32c_backend, "The CRC-32C path on this CPU: hybrid512, vpclmul512, vpclmul256, sse42x8, sse42 or table.");

            m.def(
                "encrypt",
                [](const Context &c, const py::array &values, Mode mode, Packing packing, double weight,
                   std::uint32_t parties, int threads, std::optional<std::uint64_t> seed) {
                    EncryptOptions options;
                    options.mode = mode;
                    options.packing = packing;
                    options.weight = weight;
                    options.parties = parties;
                    options.threads = threads;
                    options.seed = seed;
                    if (values.ndim() != 1)
                    {
                        throw py::value_error("values must be one-dimensional");
                    }
                    if (values.dtype().is(py::dtype::of<float>()))
                    {
                        return encrypt_typed<float>(c, values, options);
                    }
                    if (values.dtype().is(py::dtype::of<double>()))
                    {
                        return encrypt_typed<double>(c, values, options);
                    }
                    throw py::type_error("values must be float32 or float64");
                },
                py::arg("context"), py::arg("values"), py::arg("mode"), py::arg("packing"), py::arg("weight"),
                py::arg("parties"), py::arg("threads"), py::arg("seed") = py::none());

            m.def(
                "encrypted_size",
                [](const Context &c, std::size_t count, Mode mode, Packing packing) {
                    return encrypted_size(c, count, mode, packing);
                },
                py::arg("context"), py::arg("value_count"), py::arg("mode"), py::arg("packing"));

            m.def(
                "read_header",
                [](const py::buffer &buffer) {
                    ByteView v = byte_view(buffer, "data");
                    return header_dict(read_header(v.data, v.size));
                },
                py::arg("data"));

            m.def(
                "check_batch",
                [](const Context &c, const py::buffer &buffer) {
                    ByteView v = byte_view(buffer, "data");
                    return header_dict(parse_batch(c, v.data, v.size).header);
                },
                py::arg("context"), py::arg("data"));

            m.def(
                "decrypt",
                [](const Context &c, const py::buffer &buffer, int threads) {
                    ByteView v = byte_view(buffer, "data");
                    c.decryptor(); // a public context fails here, before any allocation
                    const BatchView batch = parse_batch(c, v.data, v.size);
                    py::array_t<double> out(static_cast<py::ssize_t>(batch.header.value_count));
                    double *dst = out.mutable_data();
                    const std::size_t n = static_cast<std::size_t>(batch.header.value_count);
                    {
                        py::gil_scoped_release release;
                        decrypt_into(c, batch, dst, n, threads);
                    }
                    return out;
                },
                py::arg("context"), py::arg("data"), py::arg("threads"));

            py::class_<Accumulator>(m, "Accumulator")
                .def(py::init<Context, int>(), py::arg("context"), py::arg("threads"))
                .def(
                    "add",
                    [](Accumulator &a, const py::buffer &buffer) {
                        ByteView v = byte_view(buffer, "data");
                        py::gil_scoped_release release;
                        a.add(v.data, v.size);
                    },
                    py::arg("data"))
                .def(
                    "to_bytes",
                    [](const Accumulator &a, Packing packing) {
                        std::uint8_t *out = nullptr;
                        const std::size_t size = a.serialized_size(packing);
                        py::bytes result = new_bytes(size, out);
                        {
                            py::gil_scoped_release release;
                            a.serialize_into(out, size, packing);
                        }
                        return result;
                    },
                    py::arg("packing"))
                .def("reset", &Accumulator::reset)
                .def_property_readonly("contributions", &Accumulator::contributions)
                .def_property_readonly("party_budget", &Accumulator::party_budget)
                .def_property_readonly("value_count", &Accumulator::value_count)
                .def_property_readonly("context", &Accumulator::context);

            m.def(
                "check_against_seal",
                [](const Context &c, std::size_t trials) {
                    py::gil_scoped_release release;
                    return check_against_seal(c, trials);
                },
                py::arg("context"), py::arg("trials"),
                "Bit-for-bit comparison of the engine's PRNG, sampling, seeded encryption and loading with SEAL's.");
            m.attr("BLAKE2XB_BACKEND") = blake2xb_backend();
            m.def(
                "aes_ctr_stream",
                [](const py::bytes &seed_bytes, std::size_t count) {
                    const std::string bytes = seed_bytes;
                    if (bytes.size() != 64)
                    {
                        throw ParameterError("an AES-CTR seed is 64 bytes");
                    }
                    if (!AesCtrStream::available())
                    {
                        throw ParameterError("this CPU has no AES instructions");
                    }
                    Seed seed;
                    for (std::size_t i = 0; i < seed.size(); i++)
                    {
                        seed[i] = detail::get_le<std::uint64_t>(reinterpret_cast<const std::uint8_t *>(bytes.data()) + 8 * i);
                    }
                    AesCtrStream stream(seed);
                    std::string out(count, '\0');
                    stream.generate(reinterpret_cast<std::uint8_t *>(out.data()), count);
                    return py::bytes(out);
                },
                py::arg("seed"), py::arg("count"),
                "The first `count` bytes of the AES-256-CTR noise stream of a 64-byte seed (tests).");
            m.def("aes_ctr_backend", &aes_ctr_backend, "The AES-CTR noise stream's path on this CPU.");
            m.def(
                "noise_source", [](bool seeded) { return noise_source_name(noise_source(seeded)); }, py::arg("seeded"),
                "Where secret-key encryption draws its noise: 'aes_ctr' or 'seal' (SEAL's Blake2xb).");

            // Interoperability check: decrypt one ciphertext with nothing but SEAL's own API, from
            // SEAL's own serializations of the parameters, the secret key and the ciphertext.
            m.def(
                "seal_reference_decrypt",
                [](const py::bytes &parms_bytes, const py::bytes &secret_key_bytes, const py::bytes &ciphertext_bytes) {
                    std::string p = parms_bytes, s = secret_key_bytes, ct_bytes = ciphertext_bytes;
                    seal::EncryptionParameters parms;
                    parms.load(reinterpret_cast<const seal::seal_byte *>(p.data()), p.size());
                    seal::SEALContext context(parms);
                    seal::SecretKey sk;
                    sk.load(context, reinterpret_cast<const seal::seal_byte *>(s.data()), s.size());
                    seal::Ciphertext ct;
                    ct.load(context, reinterpret_cast<const seal::seal_byte *>(ct_bytes.data()), ct_bytes.size());
                    seal::Decryptor decryptor(context, sk);
                    seal::Plaintext plain;
                    decryptor.decrypt(ct, plain);
                    seal::CKKSEncoder encoder(context);
                    std::vector<std::complex<double>> slots;
                    encoder.decode(plain, slots);
                    py::array_t<double> out(static_cast<py::ssize_t>(2 * slots.size()));
                    auto o = out.mutable_unchecked<1>();
                    for (std::size_t j = 0; j < slots.size(); j++)
                    {
                        o(2 * j) = slots[j].real();
                        o(2 * j + 1) = slots[j].imag();
                    }
                    return out;
                },
                py::arg("seal_parameters"), py::arg("seal_secret_key"), py::arg("seal_ciphertext"));
        }
    } // namespace bindings
} // namespace fhto
