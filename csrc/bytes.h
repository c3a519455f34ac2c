#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include "errors.h"

namespace fhto
{
    namespace detail
    {
        /** Little-endian writers and a bounds-checked little-endian reader. */
        template <typename T>
        inline void put_le(std::uint8_t *out, T value) noexcept
        {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            std::memcpy(out, &value, sizeof(T));
#else
            for (std::size_t i = 0; i < sizeof(T); i++)
            {
                out[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(value) >> (8 * i));
            }
#endif
        }

        template <typename T>
        inline T get_le(const std::uint8_t *in) noexcept
        {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            T v;
            std::memcpy(&v, in, sizeof(T));
            return v;
#else
            std::uint64_t v = 0;
            for (std::size_t i = 0; i < sizeof(T); i++)
            {
                v |= static_cast<std::uint64_t>(in[i]) << (8 * i);
            }
            return static_cast<T>(v);
#endif
        }

        /** Reads fields in order from a byte range; any read past its end is a FormatError. */
        class Reader
        {
        public:
            Reader(const std::uint8_t *data, std::size_t size, const char *what) noexcept
                : data_(data), size_(size), what_(what)
            {}

            const std::uint8_t *take(std::size_t n)
            {
                if (n > size_ - pos_)
                {
                    throw FormatError(
                        std::string(what_) + " is truncated: needs " + std::to_string(n) + " more bytes at offset " +
                        std::to_string(pos_) + " of " + std::to_string(size_));
                }
                const std::uint8_t *p = data_ + pos_;
                pos_ += n;
                return p;
            }

            template <typename T>
            T get()
            {
                return get_le<T>(take(sizeof(T)));
            }

            std::size_t remaining() const noexcept
            {
                return size_ - pos_;
            }

        private:
            const std::uint8_t *data_;
            std::size_t size_;
            std::size_t pos_ = 0;
            const char *what_;
        };
    } // namespace detail
} // namespace fhto
