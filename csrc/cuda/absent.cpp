// The CUDA path's entry points in a build without it: no device, and a clear refusal.

#include "cuda/api.h"
#include "errors.h"

namespace fhto
{
    namespace cuda
    {
        bool compiled() noexcept
        {
            return false;
        }

        int device_count() noexcept
        {
            return 0;
        }

        std::string device_name()
        {
            return "";
        }

        void ntt_forward_device(std::uint64_t *, std::size_t, int, std::uint64_t, const std::uint64_t *, const std::uint64_t *)
        {
            throw DeviceError("this build has no CUDA path (build with -C cmake.define.FHTO_CUDA=ON)");
        }

        void expand_uniform_device(
            const std::uint64_t *, std::size_t, std::size_t, std::size_t, const std::uint64_t *, std::uint64_t *)
        {
            throw DeviceError("this build has no CUDA path (build with -C cmake.define.FHTO_CUDA=ON)");
        }

        void blake2xb_words_device(const std::uint64_t *, std::size_t, std::size_t, std::uint64_t *)
        {
            throw DeviceError("this build has no CUDA path (build with -C cmake.define.FHTO_CUDA=ON)");
        }

        ScanResult scan_device(const void *, int, std::uint64_t, int)
        {
            throw DeviceError("this build has no CUDA path (build with -C cmake.define.FHTO_CUDA=ON)");
        }

        void encrypt_device(
            const EncryptPlan &, const void *, bool, int, std::uint64_t, double, const std::uint64_t *, std::uint64_t,
            std::uint32_t, std::uint8_t *, std::uint32_t *, int)
        {
            throw DeviceError("this build has no CUDA path (build with -C cmake.define.FHTO_CUDA=ON)");
        }

        SumProblem sum_device(const SumPlan &, const SumInput *, std::size_t, std::uint64_t, std::uint64_t *, std::uint64_t *, int)
        {
            throw DeviceError("this build has no CUDA path (build with -C cmake.define.FHTO_CUDA=ON)");
        }

        SumProblem decrypt_device(const DecryptPlan &, const SumInput &, std::uint64_t, double *, std::uint64_t, int)
        {
            throw DeviceError("this build has no CUDA path (build with -C cmake.define.FHTO_CUDA=ON)");
        }

        int pointer_device(const void *)
        {
            return -1;
        }
    } // namespace cuda
} // namespace fhto
