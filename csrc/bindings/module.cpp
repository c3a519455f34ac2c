#include "bindings/common.h"
#include "errors.h"
#include "seal/seal.h"

namespace fhto
{
    namespace bindings
    {
        namespace
        {
            [[noreturn]] void raise(const char *cls, const char *what)
            {
                py::object type = py::module_::import("fhto_native.errors").attr(cls);
                PyErr_SetString(type.ptr(), what);
                throw py::error_already_set();
            }

            void translate(std::exception_ptr p)
            {
                try
                {
                    if (p)
                    {
                        std::rethrow_exception(p);
                    }
                }
                catch (const ParameterError &e)
                {
                    raise("ParameterError", e.what());
                }
                catch (const ValueRangeError &e)
                {
                    raise("ValueRangeError", e.what());
                }
                catch (const KeyMismatchError &e)
                {
                    raise("KeyMismatchError", e.what());
                }
                catch (const LengthMismatchError &e)
                {
                    raise("LengthMismatchError", e.what());
                }
                catch (const FormatError &e)
                {
                    raise("FormatError", e.what());
                }
                catch (const SecretKeyRequiredError &e)
                {
                    raise("SecretKeyRequiredError", e.what());
                }
                catch (const DeviceError &e)
                {
                    raise("DeviceError", e.what());
                }
                catch (const Error &e)
                {
                    raise("FhtoError", e.what());
                }
            }
        } // namespace
    } // namespace bindings
} // namespace fhto

PYBIND11_MODULE(_core, m)
{
    m.doc() = "FHTO native core: batched CKKS encryption and homomorphic aggregation over Microsoft SEAL";
    m.attr("SEAL_VERSION") = std::to_string(SEAL_VERSION_MAJOR) + "." + std::to_string(SEAL_VERSION_MINOR) + "." +
                             std::to_string(SEAL_VERSION_PATCH);
    pybind11::register_exception_translator(&fhto::bindings::translate);
    fhto::bindings::bind_context(m);
    fhto::bindings::bind_codec(m);
    fhto::bindings::bind_multiparty(m);
    fhto::bindings::bind_cuda(m);
}
