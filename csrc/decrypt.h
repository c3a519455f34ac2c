#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <vector>
#include "context.h"
#include "wire.h"

namespace fhto
{
    /**
    Decrypts and decodes a whole batch (a fresh encryption or a sum) into out, which must hold
    exactly batch.header.value_count doubles. Each worker checks, loads, decrypts and decodes
    its ciphertexts with its own SEAL memory pool and writes its values in place.
    @throws SecretKeyRequiredError on a public context
    @throws FormatError if a ciphertext is corrupted
    @throws ParameterError if out has the wrong size
    */
    void decrypt_into(const Context &context, const BatchView &batch, double *out, std::size_t out_count, int threads);

    /**
    Writes the values of ciphertext k from its decoded slots into out (value_count doubles in
    all): value 2j is slot j's real part, value 2j + 1 its imaginary part; the last ciphertext
    may hold fewer. Returns how many values it wrote.
    */
    std::size_t write_slot_values(
        const std::vector<std::complex<double>> &slots, std::size_t k, std::size_t values_per_ciphertext, double *out,
        std::size_t out_count) noexcept;
} // namespace fhto
