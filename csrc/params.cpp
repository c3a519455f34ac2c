#include "params.h"

#include <numeric>
#include <sstream>
#include "errors.h"

namespace fhto
{
    int max_secure_coeff_bits(std::size_t n) noexcept
    {
        switch (n)
        {
        case 1024:
            return 27;
        case 2048:
            return 54;
        case 4096:
            return 109;
        case 8192:
            return 218;
        case 16384:
            return 438;
        case 32768:
            return 881;
        default:
            return 0;
        }
    }

    std::string describe(const Params &params)
    {
        std::ostringstream s;
        s << "N=" << params.poly_modulus_degree << ", q=[";
        for (std::size_t i = 0; i < params.coeff_modulus_bits.size(); i++)
        {
            s << (i ? ", " : "") << params.coeff_modulus_bits[i];
        }
        s << "] bits, scale=2^" << params.scale_bits;
        if (params.packing == Packing::bits)
        {
            s << ", bit-packed";
        }
        return s.str();
    }

    void validate_params(const Params &params)
    {
        const std::size_t n = params.poly_modulus_degree;
        const int bound = max_secure_coeff_bits(n);
        if (bound == 0)
        {
            throw ParameterError(
                "poly_modulus_degree must be one of 1024, 2048, 4096, 8192, 16384, 32768; got " + std::to_string(n));
        }
        const auto &bits = params.coeff_modulus_bits;
        if (bits.empty())
        {
            throw ParameterError("coeff_modulus_bits must name at least one prime");
        }
        if (bits.size() > 64)
        {
            throw ParameterError("coeff_modulus_bits names " + std::to_string(bits.size()) + " primes; at most 64");
        }
        for (std::size_t i = 0; i < bits.size(); i++)
        {
            if (bits[i] < 20 || bits[i] > 60)
            {
                throw ParameterError(
                    "coeff_modulus_bits[" + std::to_string(i) + "] must be between 20 and 60; got " +
                    std::to_string(bits[i]));
            }
        }
        if (params.packing != Packing::none && params.packing != Packing::bits)
        {
            throw ParameterError("packing must be 'none' or 'bits'");
        }
        const int total = std::accumulate(bits.begin(), bits.end(), 0);
        if (total > bound)
        {
            throw ParameterError(
                "insecure parameters: log2 q = " + std::to_string(total) + " bits exceeds the 128-bit security bound of " +
                std::to_string(bound) + " bits for N=" + std::to_string(n) + " (HomomorphicEncryption.org standard)");
        }
        // Data live modulo all primes but the special one (or modulo the only prime).
        const int data_bits = bits.size() == 1 ? bits[0] : total - bits.back();
        if (params.scale_bits < 1 || params.scale_bits > data_bits - 2)
        {
            throw ParameterError(
                "scale_bits must be between 1 and " + std::to_string(data_bits - 2) +
                " (two bits below the data modulus of " + std::to_string(data_bits) + " bits); got " +
                std::to_string(params.scale_bits));
        }
    }

    seal::EncryptionParameters make_seal_parameters(const Params &params)
    {
        validate_params(params);
        seal::EncryptionParameters parms(seal::scheme_type::ckks);
        try
        {
            parms.set_poly_modulus_degree(params.poly_modulus_degree);
            parms.set_coeff_modulus(seal::CoeffModulus::Create(params.poly_modulus_degree, params.coeff_modulus_bits));
        }
        catch (const std::exception &e)
        {
            throw ParameterError(std::string("SEAL rejected the parameters (") + describe(params) + "): " + e.what());
        }
        return parms;
    }
} // namespace fhto
