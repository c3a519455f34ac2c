#pragma once

#include <exception>
#include <mutex>
#include <optional>
#include "context.h"
#include "cuda/plan.h"
#include "encoder.h"

namespace fhto
{
    /**
    What the engine's encryption, addition and decryption derive from a context (SEAL's encoder
    tables, the secret key's Shoup quotients, record templates and layouts), built on first use and
    kept by the context, so that a call of one ciphertext costs what one ciphertext costs. Copies
    of a context share them; all access is thread-safe. A plan that cannot be built (a public
    context asked for an encryption plan, a layout the engine does not write) keeps its exception
    and throws it again on every use.
    */
    class Plans
    {
    public:
        const EncoderTables &encoder(const Context &context);
        const cuda::EncryptPlan &encrypt(const Context &context, Packing packing);
        const cuda::DecryptPlan &decrypt(const Context &context, Mode mode, Packing packing);
        const cuda::SumPlan &sum(const Context &context, Packing packing);

    private:
        template <typename T>
        struct Lazy
        {
            std::once_flag once;
            std::optional<T> value;
            std::exception_ptr error;

            template <typename Make>
            const T &get(Make &&make)
            {
                std::call_once(once, [&] {
                    try
                    {
                        value.emplace(make());
                    }
                    catch (...)
                    {
                        error = std::current_exception();
                    }
                });
                if (error)
                {
                    std::rethrow_exception(error);
                }
                return *value;
            }
        };

        Lazy<EncoderTables> encoder_;
        Lazy<cuda::EncryptPlan> encrypt_[2];
        Lazy<cuda::DecryptPlan> decrypt_[3][2];
        Lazy<cuda::SumPlan> sum_[2];
    };
} // namespace fhto
