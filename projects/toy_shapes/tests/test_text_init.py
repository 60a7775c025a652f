"""The toy's text side: the slot tokens <faint> and <bright> after <easy> and <hard>, orthogonal word rows for a text
encoder trained from scratch, slot tokens started from other slot tokens' rows."""
import pytest
import torch

from mmdet_detdiffusion.generator.text import SlotTokenEmbeddings, add_layout_tokens
from mmdet_detdiffusion.layout.prompt import LocationGrid
from projects.toy_shapes.toy_shapes.text_init import copy_slot_rows, init_word_embeddings


def test_slot_tokens_come_in_code_order_and_start_from_their_words(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    old = encoder.get_input_embeddings().weight.detach().clone()
    assert add_layout_tokens(tokenizer, encoder, LocationGrid(8)) == dict(first_location_id=49408, num_added=68)
    assert tokenizer('<easy> <hard> <faint> <bright>', add_special_tokens=False).input_ids == [
        49472, 49473, 49474, 49475], 'the bundled base\'s order: <easy> <hard> <faint> <bright>'
    table = encoder.get_input_embeddings().weight.detach()
    for word in ('easy', 'hard', 'faint', 'bright'):
        word_ids = tokenizer(word, add_special_tokens=False).input_ids
        assert torch.equal(table[tokenizer.convert_tokens_to_ids(f'<{word}>')], old[word_ids].mean(0))
    assert SlotTokenEmbeddings(tokenizer, encoder).weight.shape == (4, 32), 'one row per slot value'


def test_slot_tokens_a_text_encoder_was_trained_without_start_from_their_words(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    old = encoder.get_input_embeddings().weight.detach().clone()
    encoder.resize_token_embeddings(49408 + 64 + 2)  # trained with the location tokens, <easy> and <hard> only
    with torch.no_grad():
        encoder.get_input_embeddings().weight[49408:] = 1.0
    assert add_layout_tokens(tokenizer, encoder, LocationGrid(8)) == dict(first_location_id=49408, num_added=68)
    table = encoder.get_input_embeddings().weight.detach()
    assert table.shape[0] == 49408 + 68 and (table[49408:49408 + 66] == 1.0).all(), 'trained rows kept'
    for word in ('faint', 'bright'):
        word_ids = tokenizer(word, add_special_tokens=False).input_ids
        assert torch.equal(table[tokenizer.convert_tokens_to_ids(f'<{word}>')], old[word_ids].mean(0))


def test_prompt_words_get_orthogonal_rows_of_the_norm(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    old = encoder.get_input_embeddings().weight.detach().clone()
    ids = init_word_embeddings(tokenizer, encoder, ['An image with', 'circle', 'faint square'], norm=2.0)
    assert ids == sorted(tokenizer('An image with circle faint square', add_special_tokens=False).input_ids)
    rows = encoder.get_input_embeddings().weight.detach()[ids]
    torch.testing.assert_close(rows @ rows.T, 4.0 * torch.eye(len(ids)), atol=1e-5, rtol=0)
    others = torch.ones(len(old), dtype=torch.bool)
    others[ids] = False
    assert torch.equal(encoder.get_input_embeddings().weight.detach()[others], old[others])


def test_same_seed_same_rows_and_too_many_words_refused(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    ids = init_word_embeddings(tokenizer, encoder, ['circle', 'square'], norm=1.0, seed=3)
    first = encoder.get_input_embeddings().weight.detach()[ids].clone()
    init_word_embeddings(tokenizer, encoder, ['circle', 'square'], norm=1.0, seed=3)
    assert torch.equal(encoder.get_input_embeddings().weight.detach()[ids], first)
    words = ('cat dog bird fish horse cow sheep goat lion tiger bear wolf fox deer frog duck owl crab '
             'apple bread cheese lemon mango onion pepper rice salt sugar tea water wine milk honey corn').split()
    with pytest.raises(ValueError, match='embedding width'):  # 36 tokens, 32 channels
        init_word_embeddings(tokenizer, encoder, words, norm=1.0)


def test_slot_tokens_start_from_other_slot_tokens_rows(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    add_layout_tokens(tokenizer, encoder, LocationGrid(8))
    table = encoder.get_input_embeddings().weight
    row = {name: table[tokenizer.convert_tokens_to_ids(f'<{name}>')].detach().clone()
           for name in ('easy', 'hard', 'faint', 'bright')}
    copy_slot_rows(tokenizer, encoder, dict(hard='faint', easy='hard'))  # every source read before any write
    new = {name: table[tokenizer.convert_tokens_to_ids(f'<{name}>')] for name in row}
    assert torch.equal(new['hard'], row['faint']) and torch.equal(new['easy'], row['hard'])
    assert torch.equal(new['faint'], row['faint']) and torch.equal(new['bright'], row['bright'])
    with pytest.raises(ValueError, match='medium'):
        copy_slot_rows(tokenizer, encoder, dict(hard='medium'))


def test_slot_rows_are_not_copied_before_the_tokens_exist(fresh_clip_text):
    tokenizer, encoder = fresh_clip_text
    with pytest.raises(ValueError, match='add_layout_tokens'):
        copy_slot_rows(tokenizer, encoder, dict(hard='faint'))
