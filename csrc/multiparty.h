#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>
#include "context.h"
#include "params.h"
#include "prng.h"
#include "seal/seal.h"
#include "wire.h"

namespace fhto
{
    /**
    Multiparty CKKS keys: the arithmetic. No party ever holds the whole secret key.

    Polynomials travel as flat arrays of 64-bit words, limb after limb (limb j holds N residues
    modulo prime j), in SEAL's NTT form unless said otherwise. "Key level" means all primes of the
    parameter set, "data level" all primes but SEAL's special one (ciphertexts live there).

      common polynomial   a = uniform at key level, expanded from a public 64-byte seed
      party i             s_i ternary, e_i centered binomial (SEAL's samplers), both secret;
                          publishes p_i = -(a * s_i + e_i)
      collective key      (sum_i p_i, a): a SEAL public key for s = sum_i s_i
      decryption share    d_i = INTT(c1 * lambda_i * s'_i) + F_i, rounded to a multiple of 2^k
                          (s'_i = s_i for N-of-N; party i's Shamir share of s for t-of-n, with
                          lambda_i its Lagrange coefficient for the set of parties that decrypt)
      combination         c0 + sum_i d_i = m + noise, decoded as usual

    F_i is the flooding noise: the sum of four independent integers, each uniform on [0, 2^w),
    minus 2 (2^w - 1), so symmetric about 0. Its variance is 4 (2^(2w) - 1) / 12; |F_i| < 2^(w+1); it is sampled
    with exact integer arithmetic from a Blake2xb stream (no floating point). docs/MULTIPARTY.md
    derives w from the statistical security wanted and the decryption budget.
    */
    class Ring
    {
    public:
        /** @throws ParameterError if the parameters are invalid or insecure */
        explicit Ring(const Params &params);

        const Params &params() const noexcept
        {
            return params_;
        }
        const seal::SEALContext &context() const noexcept
        {
            return ctx_;
        }
        std::size_t n() const noexcept
        {
            return params_.poly_modulus_degree;
        }
        /** The primes at key level (all of them). */
        const std::vector<seal::Modulus> &key_moduli() const;
        /** The primes at data level (all but the special one, or the only one). */
        const std::vector<seal::Modulus> &data_moduli() const;

    private:
        Params params_;
        seal::SEALContext ctx_;
    };

    /**
    Public-key encryption with its randomness from a Blake2xb seed, the same algorithm as SEAL's
    Encryptor::encrypt for CKKS: u ternary, then e0 and e1 centered binomial, all read in that
    order from one stream; c = (p0 * u + e0, p1 * u + e1) at key level, divided and rounded by the
    special prime down to the data level when there is one; then m added to c0.
    */
    void encrypt_asymmetric_seeded(
        const Context &context, const seal::Plaintext &plain, const Seed &seed, seal::Ciphertext &destination);

    /**
    Checks on `trials` random seeds and plaintexts that encrypt_asymmetric_seeded equals SEAL's
    own Encryptor::encrypt under a generator factory that hands out the same seed. Returns the
    number of comparisons. @throws std::logic_error naming the first disagreement
    */
    std::size_t check_asymmetric_against_seal(const Context &context, std::size_t trials);

    /** The common polynomial a at key level, in NTT form, from a public seed (SEAL's uniform sampler). */
    std::vector<std::uint64_t> common_polynomial(const Ring &ring, const Seed &seed);

    /**
    One party's key share: its secret s_i (key level, NTT form) and its public share
    p_i = -(a * s_i + e_i). With a seed the pair is a deterministic function of it (reproducible
    studies and tests only); otherwise the operating system's randomness.
    @throws ParameterError if a has the wrong length
    */
    void generate_key_share(
        const Ring &ring, const std::vector<std::uint64_t> &a, const std::optional<Seed> &seed,
        std::vector<std::uint64_t> &secret, std::vector<std::uint64_t> &public_share);

    /**
    The collective public context: public key (sum of the public shares, a).
    @throws ParameterError if a share has the wrong length or a residue out of range
    */
    Context collective_context(
        const Ring &ring, const std::vector<std::uint64_t> &a, const std::vector<const std::uint64_t *> &public_shares);

    /**
    Shamir shares of a secret polynomial (any level; `limbs` primes of the ring's key level from
    the first): for each x in xs, f(x) with f(0) = secret and t - 1 further coefficients uniform
    modulo each prime, drawn from the Blake2xb stream of `seed`. Returns len(xs) rows.
    @throws ParameterError for t < 1, t > len(xs), an x that is 0 or repeated, or a wrong length
    */
    std::vector<std::vector<std::uint64_t>> shamir_split(
        const Ring &ring, const std::uint64_t *secret, std::size_t limbs, std::size_t t,
        const std::vector<std::uint64_t> &xs, const Seed &seed);

    /**
    The linear tag of a batch under a secret tag key (docs/MULTIPARTY.md, "Only sums"): for each of
    `repetitions` independent keys and each data prime q_l,

        tag[r][l] = sum over ciphertexts k, polynomials p, coefficients i of K[r][k][p][l][i] * c_k[p][l][i] mod q_l,

    with K uniform modulo q_l, read from the Blake2xb stream of BLAKE2b-512(key = round_key,
    message = le64(k)) in the order r, p, l, i, one 64-bit word each, reduced modulo q_l; a word in
    the incomplete last multiple of q_l (SEAL's rejection rule) is replaced by the next word of the
    stream, in place. Linear in
    the ciphertexts, so the tag of a sum is the sum of the tags. Returns repetitions * L words.
    @throws FormatError if a ciphertext is corrupted
    */
    std::vector<std::uint64_t> contribution_tag(
        const Context &context, const BatchView &batch, const Seed &round_key, std::size_t repetitions, int threads);

    /** How a decryption share is made. */
    struct ShareOptions
    {
        int flood_bits = 0; ///< w: the four flooding summands are uniform on [0, 2^w)
        int round_bits = 0; ///< k: each share coefficient is rounded to a multiple of 2^k
        std::optional<std::uint64_t> seed; ///< flooding noise from derive_seed(flood, seed, k); tests and studies only
        int threads = 0;
    };

    /** Bits of one stored share coefficient: bit length of floor((q - 1 + 2^(k-1)) / 2^k), the
    largest rounded value (q the data modulus, k = round_bits). */
    int share_word_bits(const Context &context, int round_bits);

    /** Bytes of a share payload for `ciphertexts` ciphertexts. */
    std::size_t share_payload_bytes(const Context &context, std::size_t ciphertexts, int round_bits);

    /**
    Writes the decryption share of every ciphertext of `batch` into out (share_payload_bytes):
    per ciphertext, N coefficients of share_word_bits bits each, least significant bit first.
    `secret` is the data-level NTT form of the party's (Shamir-share or own) secret; `lambda`
    one multiplier per data prime (1 for N-of-N).
    @throws ParameterError for flood_bits outside [1, 60], round_bits outside what the modulus allows,
    a wrong secret length or out size
    @throws FormatError if a ciphertext is corrupted
    */
    void decryption_share_into(
        const Context &context, const BatchView &batch, const std::uint64_t *secret, std::size_t secret_words,
        const std::vector<std::uint64_t> &lambda, const ShareOptions &options, std::uint8_t *out, std::size_t out_size);

    /**
    Combines shares with the batch's c0 and decodes: out holds batch.header.value_count values.
    Each share is a payload written by decryption_share_into with the same round_bits.
    @throws ParameterError for a wrong payload or out size
    */
    void combine_shares_into(
        const Context &context, const BatchView &batch, const std::vector<const std::uint8_t *> &shares,
        std::size_t share_bytes, int round_bits, double *out, std::size_t out_count, int threads);
} // namespace fhto
