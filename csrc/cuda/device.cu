// Whether a GPU is usable, asked of the CUDA runtime without ever failing: a machine with no GPU
// or no driver (cudaErrorInsufficientDriver, cudaErrorNoDevice) has zero devices.

#include <cuda_runtime.h>
#include <string>
#include "cuda/api.h"

namespace fhto
{
    namespace cuda
    {
        bool compiled() noexcept
        {
            return true;
        }

        int device_count() noexcept
        {
            int count = 0;
            if (cudaGetDeviceCount(&count) != cudaSuccess)
            {
                cudaGetLastError(); // clear the sticky-free error so later calls start clean
                return 0;
            }
            return count;
        }

        std::string device_name()
        {
            if (device_count() == 0)
            {
                return "";
            }
            cudaDeviceProp prop{};
            if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess)
            {
                return "";
            }
            return std::string(prop.name) + ", compute " + std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                   ", " + std::to_string(prop.totalGlobalMem >> 30) + " GiB";
        }
    } // namespace cuda
} // namespace fhto
