#pragma once

// What every host-side launcher of the CUDA path needs: a CUDA status turned into a DeviceError,
// and a device array that is freed on every path out (errors included).

#include <cuda_runtime.h>
#include <cstddef>
#include <string>
#include "errors.h"

namespace fhto
{
    namespace cuda
    {
        inline void check(cudaError_t status, const char *what)
        {
            if (status != cudaSuccess)
            {
                throw DeviceError(std::string("CUDA ") + what + ": " + cudaGetErrorString(status));
            }
        }

        /** Makes `device` current for a scope and restores the previous one. */
        class DeviceScope
        {
        public:
            explicit DeviceScope(int device)
            {
                check(cudaGetDevice(&previous_), "device query");
                check(cudaSetDevice(device), "selecting the device");
            }
            ~DeviceScope()
            {
                cudaSetDevice(previous_);
            }

        private:
            int previous_ = 0;
        };

        /** `count` elements of T on the device, freed when it goes out of scope. */
        template <typename T>
        class DeviceArray
        {
        public:
            DeviceArray(std::size_t count, const char *what)
            {
                check(cudaMalloc(&data_, count * sizeof(T)), what);
            }
            /** The same, filled with count elements copied from the host. */
            DeviceArray(const T *host, std::size_t count, const char *what) : DeviceArray(count, what)
            {
                check(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice), "copy to the device");
            }
            DeviceArray(const DeviceArray &) = delete;
            DeviceArray &operator=(const DeviceArray &) = delete;
            ~DeviceArray()
            {
                cudaFree(data_);
            }
            T *get() const noexcept
            {
                return data_;
            }
            /** Copies the first count elements back to the host. */
            void copy_to(T *host, std::size_t count) const
            {
                check(cudaMemcpy(host, data_, count * sizeof(T), cudaMemcpyDeviceToHost), "copy to the host");
            }

        private:
            T *data_ = nullptr;
        };
    } // namespace cuda
} // namespace fhto
