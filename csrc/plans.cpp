#include "plans.h"

#include "gpu_decrypt.h"
#include "gpu_encrypt.h"
#include "gpu_sum.h"

namespace fhto
{
    namespace
    {
        std::size_t packing_index(Packing packing) noexcept
        {
            return packing == Packing::bits ? 1 : 0;
        }
    } // namespace

    const EncoderTables &Plans::encoder(const Context &context)
    {
        return encoder_.get([&] { return encoder_tables(context); });
    }

    const cuda::EncryptPlan &Plans::encrypt(const Context &context, Packing packing)
    {
        return encrypt_[packing_index(packing)].get([&] { return make_encrypt_plan(context, packing); });
    }

    const cuda::DecryptPlan &Plans::decrypt(const Context &context, Mode mode, Packing packing)
    {
        const std::size_t m = mode == Mode::symmetric ? 0 : mode == Mode::public_key ? 1 : 2;
        return decrypt_[m][packing_index(packing)].get([&] { return make_decrypt_plan(context, mode, packing); });
    }

    const cuda::SumPlan &Plans::sum(const Context &context, Packing packing)
    {
        return sum_[packing_index(packing)].get([&] { return make_sum_plan(context, packing); });
    }
} // namespace fhto
