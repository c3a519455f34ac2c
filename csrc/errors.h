#pragma once

#include <stdexcept>
#include <string>

namespace fhto
{
    /** Base of every error the engine raises on purpose; the bindings map each subclass to the
    Python class of the same name in fhto_native.errors. */
    class Error : public std::runtime_error
    {
    public:
        using std::runtime_error::runtime_error;
    };

    /** Invalid or insecure encryption parameters, or a bad option value. */
    class ParameterError : public Error
    {
    public:
        using Error::Error;
    };

    /** Input values that cannot be encrypted faithfully: not finite, or too large for the range. */
    class ValueRangeError : public Error
    {
    public:
        using Error::Error;
    };

    /** Ciphertexts made under another key set or parameter set than the context in use. */
    class KeyMismatchError : public Error
    {
    public:
        using Error::Error;
    };

    /** Ciphertext batches of different value counts combined. */
    class LengthMismatchError : public Error
    {
    public:
        using Error::Error;
    };

    /** Bytes that are not a well-formed FHTO object: truncated, corrupted or foreign. */
    class FormatError : public Error
    {
    public:
        using Error::Error;
    };

    /** The GPU path failed or is absent: no device, out of device memory, a failed kernel. */
    class DeviceError : public Error
    {
    public:
        using Error::Error;
    };

    /** An operation that needs the secret key was asked of a public context. */
    class SecretKeyRequiredError : public Error
    {
    public:
        using Error::Error;
    };
} // namespace fhto
