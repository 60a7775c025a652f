"""CLIP tokenizer from the real BPE vocabulary, extended with layout tokens; text encoder resized; the slot tokens'
rows as a parameter of their own."""
from copy import deepcopy

import pytest
import torch
from transformers import CLIPTextModel, CLIPTokenizer

from mmdet_detdiffusion.generator.text import (SlotTokenEmbeddings, add_layout_tokens, clip_tokenizer_from_bpe,
                                               find_open_clip_bpe, slot_token_ids)
from mmdet_detdiffusion.layout.prompt import LocationGrid


def test_tokenizer_has_clips_real_ids(fresh_clip_text):
    tokenizer, _ = fresh_clip_text
    assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
    assert tokenizer('An image with a cat').input_ids == [49406, 550, 2867, 593, 320, 2368, 49407]


def test_layout_tokens_added_and_initialised(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    old = encoder.get_input_embeddings().weight.detach().clone()
    info = add_layout_tokens(tokenizer, encoder, LocationGrid(8))
    assert info == dict(first_location_id=49408, num_added=66)  # 64 locations, <easy> and <hard>
    assert len(tokenizer) == encoder.get_input_embeddings().num_embeddings == 49408 + 66
    assert tokenizer('<l0> <l63> <easy> <hard>', add_special_tokens=False).input_ids == [49408, 49471, 49472, 49473]
    table = encoder.get_input_embeddings().weight.detach()
    assert torch.equal(table[:49408], old), 'pretrained rows stay as they were'
    loc = table[49408:49408 + 64]
    torch.testing.assert_close(loc.norm(dim=1), old.norm(dim=1).mean().expand(64), rtol=1e-4, atol=1e-5)
    cos = torch.nn.functional.cosine_similarity
    assert cos(loc[0], loc[1], dim=0) > cos(loc[0], loc[7], dim=0)  # neighbours closer than far points
    assert cos(loc[0], loc[8], dim=0) > cos(loc[0], loc[56], dim=0)  # in y too
    for word, token in (('easy', '<easy>'), ('hard', '<hard>')):
        word_ids = tokenizer(word, add_special_tokens=False).input_ids
        assert torch.equal(table[tokenizer.convert_tokens_to_ids(token)], old[word_ids].mean(0))


def test_save_reload_keeps_tokens_and_embeddings(fresh_clip_text, tmp_path):
    tokenizer, encoder = fresh_clip_text
    add_layout_tokens(tokenizer, encoder, LocationGrid(8))
    tokenizer.save_pretrained(tmp_path / 'tokenizer')
    encoder.save_pretrained(tmp_path / 'text_encoder')
    tokenizer2 = CLIPTokenizer.from_pretrained(tmp_path / 'tokenizer')
    encoder2 = CLIPTextModel.from_pretrained(tmp_path / 'text_encoder')
    assert add_layout_tokens(tokenizer2, encoder2, LocationGrid(8))['num_added'] == 0  # idempotent
    prompt = 'An image with cat <l3> <l60> <hard>'
    ids = tokenizer(prompt, return_tensors='pt').input_ids
    assert torch.equal(ids, tokenizer2(prompt, return_tensors='pt').input_ids)
    encoder.eval()
    torch.testing.assert_close(encoder(ids).last_hidden_state, encoder2(ids).last_hidden_state)


def test_fresh_tokenizer_keeps_the_rows_of_a_layout_trained_text_encoder(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    add_layout_tokens(tokenizer, encoder, LocationGrid(8))
    with torch.no_grad():
        encoder.get_input_embeddings().weight[-66:] += 1.0  # as if trained
    trained = encoder.get_input_embeddings().weight.detach().clone()
    tokenizer2 = clip_tokenizer_from_bpe(find_open_clip_bpe())
    assert add_layout_tokens(tokenizer2, encoder, LocationGrid(8)) == dict(first_location_id=49408, num_added=66)
    assert torch.equal(encoder.get_input_embeddings().weight, trained)
    assert tokenizer2.convert_tokens_to_ids('<hard>') == tokenizer.convert_tokens_to_ids('<hard>')
    with pytest.raises(ValueError, match='layout tokens of a 4x4 grid'):
        add_layout_tokens(clip_tokenizer_from_bpe(find_open_clip_bpe()), encoder, LocationGrid(4))


def test_slot_tokens_a_text_encoder_was_trained_without_start_from_their_words(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    old = encoder.get_input_embeddings().weight.detach().clone()
    encoder.resize_token_embeddings(49408 + 64 + 1)  # trained with the location tokens and <easy> only
    with torch.no_grad():
        encoder.get_input_embeddings().weight[49408:] = 1.0
    assert add_layout_tokens(tokenizer, encoder, LocationGrid(8)) == dict(first_location_id=49408, num_added=66)
    table = encoder.get_input_embeddings().weight.detach()
    assert table.shape[0] == 49408 + 66 and (table[49408:49408 + 65] == 1.0).all(), 'trained rows kept'
    for word in ('hard',):
        word_ids = tokenizer(word, add_special_tokens=False).input_ids
        assert torch.equal(table[tokenizer.convert_tokens_to_ids(f'<{word}>')], old[word_ids].mean(0))
    short = clip_tokenizer_from_bpe(find_open_clip_bpe())
    encoder.resize_token_embeddings(49408 + 10)  # fewer rows than the location tokens: not a layout-trained table
    with pytest.raises(ValueError, match='locations first'):
        add_layout_tokens(short, encoder, LocationGrid(8))
    geodiffusion = clip_tokenizer_from_bpe(find_open_clip_bpe())
    geodiffusion.add_tokens(LocationGrid(8).tokens)  # holds the location tokens; its table two rows more (padding)
    encoder.resize_token_embeddings(len(geodiffusion) + 2)
    with pytest.raises(ValueError, match='the text encoder embeds'):
        add_layout_tokens(geodiffusion, encoder, LocationGrid(8))


def test_slot_embeddings_train_as_their_own_parameter_and_write_back(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    add_layout_tokens(tokenizer, encoder, LocationGrid(8))
    encoder.eval()
    slot, plain = (tokenizer([f'An image with cat <l3> <l60> {t}'], return_tensors='pt').input_ids
                   for t in ('<hard>', 'dog'))
    before = encoder(slot).last_hidden_state.detach()
    holder = torch.nn.Module()
    holder.encoder, holder.slots = encoder, SlotTokenEmbeddings(tokenizer, encoder)
    torch.testing.assert_close(encoder(slot).last_hidden_state, before)  # the same rows to start with
    # A weighted sum: a plain sum of the final LayerNorm's output is zero whatever the input, so its
    # gradients would be rounding noise.
    weights = torch.randn(before.shape, generator=torch.Generator().manual_seed(0))
    (encoder(slot).last_hidden_state * weights).sum().backward()
    table = encoder.get_input_embeddings().weight
    hard = tokenizer.convert_tokens_to_ids('<hard>')
    assert holder.slots.weight.grad[1].abs().sum() > 0 and holder.slots.weight.grad[0].abs().sum() == 0
    assert table.grad[hard].abs().sum() == 0, 'the table\'s own <hard> row is not used'
    with torch.no_grad():
        holder.slots.weight[1] += 1.0
    assert not torch.allclose(encoder(slot).last_hidden_state, before)
    copy = deepcopy(holder)  # as mmengine's EMA copies the model
    with torch.no_grad():
        copy.slots.weight[1] += 1.0
    assert not torch.allclose(copy.encoder(slot).last_hidden_state, encoder(slot).last_hidden_state)
    assert torch.equal(copy.encoder(plain).last_hidden_state, encoder(plain).last_hidden_state)
    holder.slots.write_back()
    assert torch.equal(table[hard], holder.slots.weight[1])


def test_a_slot_rows_gradient_sums_every_position_of_its_token(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    add_layout_tokens(tokenizer, encoder, LocationGrid(8))
    slots = SlotTokenEmbeddings(tokenizer, encoder)
    ids = tokenizer(['cat <hard> dog <easy> bird <hard>', 'fish <hard>'], padding='max_length', max_length=12,
                    return_tensors='pt').input_ids
    table = encoder.get_input_embeddings()
    out = slots.substitute(table, (ids,), table(ids).detach())
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    (out * weights).sum().backward()
    for row, token in enumerate(('<easy>', '<hard>')):
        at = ids == tokenizer.convert_tokens_to_ids(token)
        assert int(at.sum()) == {'<easy>': 1, '<hard>': 3}[token]
        torch.testing.assert_close(out[at], slots.weight[row].detach().expand(int(at.sum()), -1))
        torch.testing.assert_close(slots.weight.grad[row], weights[at].sum(dim=0))
    plain = ~torch.isin(ids, slots.token_ids)
    torch.testing.assert_close(out[plain], table(ids)[plain])


def test_slot_token_ids_follow_the_values_and_need_the_tokens(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    with pytest.raises(ValueError, match='add_layout_tokens'):
        slot_token_ids(tokenizer, ['easy'])
    with pytest.raises(ValueError, match='add_layout_tokens'):
        SlotTokenEmbeddings(tokenizer, encoder)
    add_layout_tokens(tokenizer, encoder, LocationGrid(8))
    assert slot_token_ids(tokenizer, ['hard', 'easy']) == tokenizer.convert_tokens_to_ids(['<hard>', '<easy>'])
    assert SlotTokenEmbeddings(tokenizer, encoder).weight.shape == (2, 32), 'one row per slot value: easy, hard'
