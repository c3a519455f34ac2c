#pragma once

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <cstdint>
#include <string>

namespace fhto
{
    namespace bindings
    {
        namespace py = pybind11;

        /** A read-only view of a 1-D contiguous byte buffer; keeps the exporter alive and unresized. */
        struct ByteView
        {
            py::buffer_info info;
            const std::uint8_t *data = nullptr;
            std::size_t size = 0;
        };

        inline ByteView byte_view(const py::buffer &buffer, const char *name)
        {
            ByteView v;
            v.info = buffer.request();
            if (v.info.itemsize != 1 || v.info.ndim != 1 || (v.info.size > 1 && v.info.strides[0] != 1))
            {
                throw py::type_error(std::string(name) + " must be a contiguous bytes-like object");
            }
            v.data = static_cast<const std::uint8_t *>(v.info.ptr);
            v.size = static_cast<std::size_t>(v.info.size);
            return v;
        }

        /** A new bytes object of the given size whose contents the caller fills. */
        /**
        A new bytes object of `size` bytes for the engine to fill. A large one is fresh memory from
        the system: its whole 2 MiB pages are asked to be backed by huge pages (Linux's
        transparent huge pages, where enabled), so that filling it takes one page fault per 2 MiB
        instead of one per 4 KiB (about 7 per ciphertext otherwise), as numpy does for its arrays.
        */
        inline py::bytes new_bytes(std::size_t size, std::uint8_t *&data)
        {
            PyObject *obj = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size));
            if (!obj)
            {
                throw py::error_already_set();
            }
            data = reinterpret_cast<std::uint8_t *>(PyBytes_AS_STRING(obj));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
            constexpr std::uintptr_t huge = std::uintptr_t(1) << 21;
            const std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(data) + huge - 1) & ~(huge - 1);
            const std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(data) + size) & ~(huge - 1);
            if (end > begin)
            {
                madvise(reinterpret_cast<void *>(begin), end - begin, MADV_HUGEPAGE); // advice only: failure is harmless
            }
#endif
            return py::reinterpret_steal<py::bytes>(obj);
        }

        inline py::bytes to_py_bytes(const std::string &s)
        {
            return py::bytes(s.data(), s.size());
        }

        void bind_context(py::module_ &m);
        void bind_codec(py::module_ &m);
        void bind_multiparty(py::module_ &m);
        void bind_cuda(py::module_ &m);
    } // namespace bindings
} // namespace fhto
