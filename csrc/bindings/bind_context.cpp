#include <pybind11/stl.h>
#include "bindings/common.h"
#include "context.h"
#include "params.h"

namespace fhto
{
    namespace bindings
    {
        namespace
        {
            Params make_params(std::size_t n, const std::vector<int> &bits, int scale_bits, Packing packing)
            {
                Params p;
                p.poly_modulus_degree = n;
                p.coeff_modulus_bits = bits;
                p.scale_bits = scale_bits;
                p.packing = packing;
                return p;
            }
        } // namespace

        void bind_context(py::module_ &m)
        {
            py::enum_<Mode>(m, "Mode")
                .value("symmetric", Mode::symmetric)
                .value("public_key", Mode::public_key)
                .value("sum", Mode::sum);
            py::enum_<Packing>(m, "Packing").value("none", Packing::none).value("bits", Packing::bits);

            m.def("max_secure_coeff_bits", &max_secure_coeff_bits, py::arg("poly_modulus_degree"));
            m.def(
                "validate_params",
                [](std::size_t n, const std::vector<int> &bits, int scale_bits, Packing packing) {
                    validate_params(make_params(n, bits, scale_bits, packing));
                },
                py::arg("poly_modulus_degree"), py::arg("coeff_modulus_bits"), py::arg("scale_bits"),
                py::arg("packing"));

            py::class_<Context>(m, "Context")
                .def_static(
                    "generate",
                    [](std::size_t n, const std::vector<int> &bits, int scale_bits, Packing packing,
                       std::optional<std::uint64_t> seed) {
                        Params p = make_params(n, bits, scale_bits, packing);
                        py::gil_scoped_release release;
                        return Context::generate(p, seed);
                    },
                    py::arg("poly_modulus_degree"), py::arg("coeff_modulus_bits"), py::arg("scale_bits"),
                    py::arg("packing"), py::arg("seed") = py::none())
                .def_static(
                    "from_bytes",
                    [](const py::buffer &buffer) {
                        ByteView v = byte_view(buffer, "data");
                        py::gil_scoped_release release;
                        return Context::from_bytes(v.data, v.size);
                    },
                    py::arg("data"))
                .def(
                    "to_bytes",
                    [](const Context &c, bool include_secret) { return to_py_bytes(c.to_bytes(include_secret)); },
                    py::arg("include_secret"))
                .def("public_only", &Context::public_only)
                .def_property_readonly("has_secret_key", &Context::has_secret_key)
                .def_property_readonly(
                    "fingerprint",
                    [](const Context &c) {
                        const auto &fp = c.fingerprint();
                        return py::bytes(reinterpret_cast<const char *>(fp.data()), fp.size());
                    })
                .def_property_readonly("poly_modulus_degree", [](const Context &c) { return c.params().poly_modulus_degree; })
                .def_property_readonly("coeff_modulus_bits", [](const Context &c) { return c.params().coeff_modulus_bits; })
                .def_property_readonly("scale_bits", [](const Context &c) { return c.params().scale_bits; })
                .def_property_readonly("packing", [](const Context &c) { return c.params().packing; })
                .def_property_readonly(
                    "coeff_modulus",
                    [](const Context &c) {
                        std::vector<std::uint64_t> primes;
                        for (const auto &q : c.seal_context().key_context_data()->parms().coeff_modulus())
                        {
                            primes.push_back(q.value());
                        }
                        return primes;
                    })
                .def_property_readonly("values_per_ciphertext", &Context::values_per_ciphertext)
                .def_property_readonly("data_modulus_bits", &Context::data_modulus_bits)
                .def("max_abs_value", &Context::max_abs_value, py::arg("parties"), py::arg("mode"))
                .def("error_bound", &Context::error_bound, py::arg("parties"), py::arg("mode"), py::arg("max_abs") = -1.0)
                .def_property_readonly("rounding_error_factor", &Context::rounding_error_factor)
                .def("ciphertext_bytes", &Context::ciphertext_bytes, py::arg("mode"), py::arg("packing") = Packing::none)
                .def("seal_parameters_bytes", [](const Context &c) { return to_py_bytes(c.seal_parameters_bytes()); })
                .def("seal_public_key_bytes", [](const Context &c) { return to_py_bytes(c.seal_public_key_bytes()); })
                .def("seal_secret_key_bytes", [](const Context &c) { return to_py_bytes(c.seal_secret_key_bytes()); });
        }
    } // namespace bindings
} // namespace fhto
