"""Multiparty keys: collective key generation, decryption shares, t-of-n, and the rules parties enforce."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import fhto_native as fh
from fhto_native import _core
from fhto_native import multiparty as mp
from fhto_native.errors import DecryptionRefusedError, FormatError, KeyMismatchError, ParameterError, ValueRangeError
from fhto_native.fl.threshold import ThresholdKeyHolder, key_generation
from conftest import reseal

NAMES = [f"hospital {i}" for i in range(1, 6)]


def setup(parties: int, threshold: int, seed: int, **kwargs):
    consortium = mp.Consortium.create(parties, threshold, seed=seed, **kwargs)
    gen = key_generation(consortium, NAMES[:parties], seed=seed)
    members = {name: mp.Party(gen.shares[name], gen.public, threads=1) for name in NAMES[:parties]}
    return consortium, gen, members


@pytest.fixture(scope="module")
def three_of_five():
    return setup(5, 3, seed=31)


@pytest.fixture(scope="module")
def all_of_three():
    return setup(3, 3, seed=32)


ROUND = iter(range(1, 10_000))


def signed(gen, rng, count, size=9000, parties=5, senders=None):
    """``count`` hospitals' updates, their sum and their signed tags for a fresh round."""
    rnd = next(ROUND)
    xs = [rng.uniform(-1, 1, size) for _ in range(count)]
    ups = [gen.public.encrypt(x, parties=parties, threads=1).to_bytes() for x in xs]
    names = senders or NAMES[:count]
    tags = [gen.shares[n].sign_tag(gen.public, u, rnd).to_bytes() for n, u in zip(names, ups)]
    return xs, fh.aggregate(ups, gen.public).to_bytes(), {"round": rnd, "tags": tags}


def uploads(public, rng, count, size=9000, parties=5):
    xs = [rng.uniform(-1, 1, size) for _ in range(count)]
    return xs, fh.aggregate([public.encrypt(x, parties=parties, threads=1) for x in xs], public).to_bytes()


def fresh_parties(gen, **kwargs):
    return {name: mp.Party(share, gen.public, threads=1, **kwargs) for name, share in gen.shares.items()}


def test_collective_key_is_what_the_shares_imply(all_of_three, rng):
    consortium, gen, _ = all_of_three
    n, limbs = consortium.n, 2
    words = [s.public_share().words for s in gen.shares.values()]
    moduli = [np.uint64(q) for q in consortium._ring().key_moduli]
    total = np.zeros_like(words[0]).reshape(len(moduli), n)
    for w in words:
        total = (total + w.reshape(len(moduli), n)) % np.array(moduli, dtype=np.uint64)[:, None]
    expected = np.concatenate([total.reshape(-1), consortium.common_polynomial()]).astype("<u8").tobytes()
    assert expected in gen.public.seal_public_key()
    # The sum of the secret shares decrypts what the collective key encrypts.
    secret = np.zeros(limbs * n, dtype=np.uint64)
    for share in gen.shares.values():
        s = share._data_secret().reshape(limbs, n)
        secret = ((secret.reshape(limbs, n) + s) % np.array(moduli[:limbs], dtype=np.uint64)[:, None]).reshape(-1)
    xs, data = uploads(gen.public, rng, 3, parties=3)
    share = _core.mp_decryption_share(gen.public._core, data, secret, [1, 1], 1, 40, None, 1)
    values = _core.mp_combine(gen.public._core, data, [share], 40, 1)
    assert np.max(np.abs(values - sum(xs))) <= consortium.error_bound(3, public=gen.public, max_abs=1.0)
    # One party's secret alone does not.
    lone = _core.mp_decryption_share(gen.public._core, data, gen.shares[NAMES[0]]._data_secret(), [1, 1], 1, 40, None, 1)
    assert abs(np.corrcoef(_core.mp_combine(gen.public._core, data, [lone], 40, 1), sum(xs))[0, 1]) < 0.1


def test_n_of_n_decrypts_within_its_bound(all_of_three, rng):
    consortium, gen, _ = all_of_three
    members = fresh_parties(gen)
    xs, data, ev = signed(gen, rng, 3, parties=3)
    group = [1, 2, 3]
    shares = [m.decryption_share(data, group, **ev).to_bytes() for m in members.values()]
    values = mp.combine(consortium, gen.public, data, shares)
    error = np.max(np.abs(values - sum(xs)))
    assert 0 < error <= consortium.error_bound(3, public=gen.public, max_abs=1.0)


def test_any_t_of_n_decrypt_and_t_minus_one_reveal_nothing(three_of_five, rng):
    consortium, gen, _ = three_of_five
    members = fresh_parties(gen)
    bound = consortium.error_bound(5, public=gen.public, max_abs=1.0)
    for group in ([1, 2, 3], [2, 4, 5], [1, 3, 5]):
        xs, data, ev = signed(gen, rng, 5)
        shares = [members[NAMES[i - 1]].decryption_share(data, group, **ev) for i in group]
        values = mp.combine(consortium, gen.public, data, shares)
        assert np.max(np.abs(values - sum(xs))) <= bound
        # Two of the three shares (the engine's arithmetic, skipping the rules): noise, unrelated to the sum.
        partial = _core.mp_combine(gen.public._core, data, [s.payload for s in shares[:2]], consortium.round_bits, 1)
        assert abs(np.corrcoef(partial, sum(xs))[0, 1]) < 0.1
        assert np.max(np.abs(partial)) > 1e3 * np.max(np.abs(sum(xs)))


def test_a_party_never_shares_twice_or_outside_its_rules(three_of_five, rng):
    consortium, gen, _ = three_of_five
    members = fresh_parties(gen)
    one = members[NAMES[0]]
    xs, data, ev = signed(gen, rng, 5)
    one.decryption_share(data, [1, 2, 3], **ev)
    with pytest.raises(DecryptionRefusedError, match="already issued a share for this sum"):
        one.decryption_share(data, [1, 2, 3], **ev)
    with pytest.raises(DecryptionRefusedError, match="already issued"):
        one.decryption_share(data, [1, 4, 5], **ev)  # another set: still the same sum
    _, other, ev = signed(gen, rng, 5)
    with pytest.raises(DecryptionRefusedError, match="not in the decrypting set"):
        one.decryption_share(other, [2, 3, 4], **ev)
    with pytest.raises(DecryptionRefusedError, match="exactly 3 parties"):
        one.decryption_share(other, [1, 2], **ev)
    with pytest.raises(DecryptionRefusedError, match="repeats a party"):
        one.decryption_share(other, [1, 1, 2], **ev)
    with pytest.raises(DecryptionRefusedError, match="come with their contributions' signed tags"):
        one.decryption_share(other, [1, 2, 3])
    single = gen.public.encrypt(xs[0], parties=5).to_bytes()
    with pytest.raises(DecryptionRefusedError, match="got a public_key batch of 1"):
        one.decryption_share(single, [1, 2, 3])
    lone_sum = fh.aggregate([gen.public.encrypt(xs[0], parties=5)], gen.public).to_bytes()
    with pytest.raises(DecryptionRefusedError, match="got a sum batch of 1"):
        one.decryption_share(lone_sum, [1, 2, 3])
    too_many = fh.aggregate([gen.public.encrypt(x, parties=6) for x in xs + xs[:1]], gen.public).to_bytes()
    with pytest.raises(DecryptionRefusedError, match="2 to 5 contributions; got a sum batch of 6"):
        one.decryption_share(too_many, [1, 2, 3])
    # Nothing refused was counted as issued.
    assert len(one.issued) == 1


def test_the_decryption_budget_is_enforced_and_survives_restarts(tmp_path, rng):
    consortium, gen, _ = setup(3, 3, seed=33, budget_bits=14)  # 2^14 coefficients: two ciphertexts
    ledger = tmp_path / "ledger.json"
    party = mp.Party(gen.shares[NAMES[0]], gen.public, ledger=ledger, threads=1)
    _, first, ev1 = signed(gen, rng, 3, size=8192, parties=3)
    party.decryption_share(first, [1, 2, 3], **ev1)
    restarted = mp.Party(gen.shares[NAMES[0]], gen.public, ledger=ledger, threads=1)
    with pytest.raises(DecryptionRefusedError, match="already issued"):
        restarted.decryption_share(first, [1, 2, 3], **ev1)
    _, second, ev2 = signed(gen, rng, 3, size=8192, parties=3)
    restarted.decryption_share(second, [1, 2, 3], **ev2)
    _, third, ev3 = signed(gen, rng, 3, size=100, parties=3)
    with pytest.raises(DecryptionRefusedError, match=r"budget \(2\^14 coefficients\) would be exceeded"):
        restarted.decryption_share(third, [1, 2, 3], **ev3)


def test_combining_refuses_shares_that_do_not_belong(three_of_five, all_of_three, rng):
    consortium, gen, _ = three_of_five
    members = fresh_parties(gen)
    _, data, ev = signed(gen, rng, 5)
    _, other, ev_other = signed(gen, rng, 5)
    good = [members[NAMES[i - 1]].decryption_share(data, [1, 2, 3], **ev) for i in (1, 2, 3)]
    elsewhere = members[NAMES[3]].decryption_share(other, [2, 3, 4], **ev_other)
    with pytest.raises(KeyMismatchError, match="for another ciphertext"):
        mp.combine(consortium, gen.public, data, good[:2] + [elsewhere])
    later = members[NAMES[4]].decryption_share(data, [1, 2, 5], **ev)
    with pytest.raises(KeyMismatchError, match="different decrypting sets"):
        mp.combine(consortium, gen.public, data, good[:2] + [later])
    with pytest.raises(DecryptionRefusedError, match="shares came from"):
        mp.combine(consortium, gen.public, data, good[:2] + [good[1]])
    with pytest.raises(DecryptionRefusedError, match="shares came from"):
        mp.combine(consortium, gen.public, data, good[:2])
    c3, g3, _ = all_of_three
    with pytest.raises(KeyMismatchError, match="another consortium"):
        mp.combine(c3, gen.public, data, good)
    corrupted = bytearray(good[0].to_bytes())
    corrupted[-5] ^= 1
    with pytest.raises(FormatError, match="checksum mismatch"):
        mp.combine(consortium, gen.public, data, [bytes(corrupted)] + good[1:])
    assert np.all(np.isfinite(mp.combine(consortium, gen.public, data, good)))


def test_a_sum_under_a_foreign_key_with_a_copied_fingerprint_is_refused(three_of_five, rng):
    consortium, gen, _ = three_of_five
    _, foreign_gen, _ = setup(5, 3, seed=34)
    # Parties that skip the tag check (the range check alone must catch this).
    members = {}
    for name, share in gen.shares.items():
        tagless = mp.KeyShare.from_bytes(share.to_bytes())
        tagless.tag_key = None
        members[name] = mp.Party(tagless, gen.public, threads=1)
    xs = [rng.uniform(-1, 1, 5000) for _ in range(5)]
    forged = bytearray(fh.aggregate([foreign_gen.public.encrypt(x, parties=5) for x in xs], foreign_gen.public).to_bytes())
    forged[16:32] = bytes.fromhex(gen.public.fingerprint)
    forged = reseal(bytes(forged))
    shares = [members[NAMES[i - 1]].decryption_share(forged, [1, 2, 3]) for i in (1, 2, 3)]
    with pytest.raises(ValueRangeError, match="implausible"):
        mp.combine(consortium, gen.public, forged, shares)


def test_flooding_noise_has_its_stated_distribution(rng):
    # One 60-bit prime lets a share keep every bit (no rounding); a zero secret leaves the noise alone.
    keys = fh.KeySet.generate("aggregation", seed=3)
    pub = keys.public_context()
    data = fh.aggregate([pub.encrypt(rng.uniform(-1, 1, 4096 * 12), parties=2) for _ in range(2)], pub).to_bytes()
    w = 6  # four summands uniform on [0, 64): the exact distribution is small enough to tabulate
    payload = _core.mp_decryption_share(pub._core, data, np.zeros(4096, dtype=np.uint64), [1], w, 0, None, 1)
    bits = _core.mp_share_word_bits(pub._core, 0)
    raw = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), bitorder="little").reshape(-1, bits)
    words = raw.astype(np.uint64) @ (np.uint64(1) << np.arange(bits, dtype=np.uint64))
    q = int(_core.Ring(4096, [60], 40, _core.Packing.none).data_moduli[0])
    f = np.where(words > q // 2, -(np.uint64(q) - words).astype(np.int64), words.astype(np.int64))
    centre = 2 * ((1 << w) - 1)  # the four summands' mean: F is symmetric about 0
    assert f.min() >= -centre and f.max() <= centre
    # Exact pmf of the sum of four uniforms on [0, 2^w), shifted by -2^(w+1).
    one = np.ones(1 << w) / (1 << w)
    pmf = one
    for _ in range(3):
        pmf = np.convolve(pmf, one)
    observed = np.bincount(f + centre, minlength=pmf.size)
    assert observed.size == pmf.size
    # Pool into 16 equiprobable-ish bins and run a chi-square test (df 15; 99.9% quantile 37.7).
    edges = np.searchsorted(np.cumsum(pmf), np.linspace(0, 1, 17)[1:-1])
    exp = np.add.reduceat(pmf, np.r_[0, edges]) * f.size
    obs = np.add.reduceat(observed, np.r_[0, edges])
    chi2 = float(np.sum((obs - exp) ** 2 / exp))
    assert chi2 < 37.7, chi2
    assert abs(f.mean()) < 5 * np.sqrt(4 * (4**w - 1) / 12 / f.size)
    assert abs(f.var() / (4 * (4**w - 1) / 12) - 1) < 0.05


def test_channel_messages_are_authenticated_and_complete(rng):
    consortium = mp.Consortium.create(4, 2, seed=35)
    shares = [mp.KeyShare.generate(consortium, i, seed=35) for i in range(1, 5)]
    pubs = [s.public_share() for s in shares]
    sent = {s.party: s.tag_key_messages(pubs) + s.shamir_messages(pubs) for s in shares}
    inbox = [m for p in (2, 3, 4) for m in sent[p] if m.recipient == 1]
    assert len(inbox) == 3 and all(m.purpose == mp.SHAMIR_PIECE for m in inbox)
    first = inbox[0]
    tampered = mp.ChannelMessage(first.consortium_id, first.purpose, first.sender, 1, first.nonce,
                                 first.ciphertext[:-1] + bytes([first.ciphertext[-1] ^ 1]))
    with pytest.raises(FormatError, match="fails authentication"):
        shares[0].receive([tampered] + inbox[1:], pubs)
    spoofed = mp.ChannelMessage(first.consortium_id, first.purpose, inbox[1].sender, 1, first.nonce, first.ciphertext)
    with pytest.raises(FormatError, match="fails authentication"):
        shares[0].receive([spoofed, inbox[0], inbox[2]], pubs)
    with pytest.raises(KeyMismatchError, match="missing from parties"):
        shares[0].receive(inbox[:2], pubs)
    with pytest.raises(KeyMismatchError, match="another consortium, recipient or purpose"):
        shares[1].receive([m for m in sent[1] if m.recipient == 2] + inbox, pubs)
    assert not shares[0].has_threshold_share
    shares[0].receive(inbox, pubs)
    assert shares[0].has_threshold_share
    with pytest.raises(KeyMismatchError, match="no tag key from party 1"):
        shares[1].receive([m for p in (1, 3, 4) for m in sent[p] if m.recipient == 2 and m.purpose == mp.SHAMIR_PIECE], pubs)
    with pytest.raises(ParameterError, match="Shamir share first"):
        mp.Party(shares[2], mp.combine_public_key(consortium, pubs))
    wrong = pubs[:1] + [mp.PublicShare(p.consortium_id, p.party, pubs[0].exchange_key, p.signing_key, p.words) for p in pubs[1:2]] + pubs[2:]
    with pytest.raises(KeyMismatchError, match="is not this party's"):
        shares[1].adopt(wrong)


def test_a_lying_server_cannot_get_one_hospitals_update_decrypted(three_of_five, rng):
    consortium, gen, _ = three_of_five
    members = fresh_parties(gen)
    rnd = next(ROUND)
    xs = [rng.uniform(-1, 1, 3000) for _ in range(2)]
    ups = [gen.public.encrypt(x, parties=5).to_bytes() for x in xs]
    tags = [gen.shares[NAMES[i]].sign_tag(gen.public, u, rnd).to_bytes() for i, u in enumerate(ups)]
    # The attack: hospital 1's upload plus the server's own encryption of zeros claims 2 contributions.
    attack = fh.aggregate([ups[0], gen.public.encrypt(np.zeros(3000), parties=5)], gen.public).to_bytes()
    one = members[NAMES[0]]
    for bad_tags, why in (
        ([tags[0]], "its tags come from parties \\[1\\]"),
        ([tags[0], tags[0]], "each hospital counts once"),
        ([tags[0], tags[1]], "its tag does not match theirs"),
    ):
        with pytest.raises(DecryptionRefusedError, match=why):
            one.decryption_share(attack, [1, 2, 3], round=rnd, tags=bad_tags)
    honest = fh.aggregate(ups, gen.public).to_bytes()
    with pytest.raises(DecryptionRefusedError, match="another consortium or round"):
        one.decryption_share(honest, [1, 2, 3], round=rnd + 1, tags=tags)
    forged = mp.SignedTag.from_bytes(tags[1])
    forged = mp.SignedTag(forged.consortium_id, forged.round, 3, forged.values, forged.signature)
    with pytest.raises(DecryptionRefusedError, match="not signed by it"):
        one.decryption_share(honest, [1, 2, 3], round=rnd, tags=[tags[0], forged.to_bytes()])
    assert len(one.issued) == 0  # nothing refused was counted
    shares = [members[NAMES[i - 1]].decryption_share(honest, [1, 2, 3], round=rnd, tags=tags) for i in (1, 2, 3)]
    assert np.max(np.abs(mp.combine(consortium, gen.public, honest, shares) - xs[0] - xs[1])) <= consortium.error_bound(
        2, public=gen.public, max_abs=1.0)


def test_key_share_files_are_private_atomic_and_checked(tmp_path, three_of_five):
    consortium, gen, _ = three_of_five
    share = gen.shares[NAMES[1]]
    path = tmp_path / "party2.share"
    share.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = mp.KeyShare.load(path)
    assert loaded.to_bytes() == share.to_bytes() and loaded.has_threshold_share
    for loader, data in ((mp.Consortium.from_bytes, consortium.to_bytes()),
                         (mp.PublicShare.from_bytes, share.public_share().to_bytes()),
                         (mp.KeyShare.from_bytes, share.to_bytes())):
        broken = bytearray(data)
        broken[len(broken) // 2] ^= 4
        with pytest.raises(FormatError, match="checksum mismatch"):
            loader(bytes(broken))
        with pytest.raises(FormatError):
            loader(data[:20])


def test_consortium_settings_are_checked():
    with pytest.raises(ParameterError, match="threshold must be an int from 1 to parties"):
        mp.Consortium.create(3, 4)
    with pytest.raises(ParameterError, match="parties must be an int"):
        mp.Consortium.create(1)
    with pytest.raises(ParameterError, match="leaves no room"):
        mp.Consortium.create(5, 3, "compact")
    c = mp.Consortium.create(100, 100)
    # The preset's promise: the mean of 100 hospitals' updates in [-1, 1] within 1e-6.
    public = fh.KeySet.generate("threshold", seed=1).public_context()
    assert c.error_bound(100, public=public, max_abs=1.0) / 100 <= 1e-6
    assert public.max_abs_value(100, "public_key") >= 1.0
    assert mp.Consortium.from_bytes(c.to_bytes()) == c


def test_seeded_public_key_encryption_is_seals_own():
    keys = fh.KeySet.generate("threshold", seed=2)
    assert _core.mp_check_asymmetric_against_seal(keys.public_context()._core, 2) == 2


def test_a_hospital_that_drops_before_decryption_does_not_block_the_round(three_of_five, rng):
    consortium, gen, _ = three_of_five
    members = fresh_parties(gen)
    dropped = {NAMES[0], NAMES[2]}
    holder = ThresholdKeyHolder(consortium, gen.public, members, reachable=lambda: [n for n in NAMES if n not in dropped])
    xs, data, ev = signed(gen, rng, 5)  # everyone uploaded; two then dropped
    values = holder.decrypt_sum(data, **ev)
    assert np.max(np.abs(values - sum(xs))) <= consortium.error_bound(5, public=gen.public, max_abs=1.0)
    assert holder.log[-1]["parties"] == [NAMES[1], NAMES[3], NAMES[4]]
    dropped.add(NAMES[4])
    _, data, ev = signed(gen, rng, 5)
    with pytest.raises(DecryptionRefusedError, match="only 2 key holders are reachable; decrypting needs 3"):
        holder.decrypt_sum(data, **ev)


def test_seeded_key_generation_of_a_larger_consortium_is_reproducible():
    names = [f"site {i}" for i in range(1, 8)]
    runs = [key_generation(mp.Consortium.create(7, 4, seed=36), names, seed=36) for _ in range(2)]
    assert runs[0].public.fingerprint == runs[1].public.fingerprint
    assert all(runs[0].shares[n].to_bytes() == runs[1].shares[n].to_bytes() for n in names)
    assert all(runs[0].shares[n].has_threshold_share for n in names)
