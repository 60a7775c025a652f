"""PerceptionHead: the split first conv is the conv of features and box channel concatenated, and checkpointed
chunks give the same logits and gradients as one pass."""
import torch

from mmdet_detdiffusion.generator.perception_head import PerceptionHead, box_maps


def head_and_inputs(checkpoint_chunk: int):
    torch.manual_seed(0)
    head = PerceptionHead(in_channels=[8, 4], feature_blocks=[1, 2], channels=8, num_convs=2,
                          checkpoint_chunk=checkpoint_chunk)
    features = [torch.randn(2, 8, 4, 4, requires_grad=True), torch.randn(2, 4, 8, 8, requires_grad=True)]
    boxes = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.3, 0.2, 0.9, 0.9], [0.0, 0.5, 0.4, 1.0], [0.6, 0.0, 1.0, 0.3],
                          [0.2, 0.2, 0.8, 0.8]])
    return head, features, boxes, torch.tensor([0, 0, 1, 1, 1])


def test_split_first_conv_is_the_conv_of_the_concatenation():
    head, features, boxes, batch_index = head_and_inputs(checkpoint_chunk=0)
    with torch.no_grad():
        fused = head.fuse(features)
        concatenated = torch.cat([fused[batch_index], box_maps(boxes, fused.shape[-2:])], dim=1)
        expected = head.mask_convs(concatenated)[:, 0]
        torch.testing.assert_close(head(features, boxes, batch_index), expected, rtol=1e-5, atol=1e-6)


def test_checkpointed_chunks_give_the_same_logits_and_gradients():
    results = []
    for chunk in (0, 2):  # 2: chunks of 2, 2 and 1 instances
        head, features, boxes, batch_index = head_and_inputs(checkpoint_chunk=chunk)
        logits = head(features, boxes, batch_index)
        (logits * torch.linspace(-1, 1, logits.numel()).reshape(logits.shape)).sum().backward()
        results.append((logits.detach(), [p.grad for p in head.parameters()], [f.grad for f in features]))
    (logits, head_grads, feature_grads), (chunked, chunked_head_grads, chunked_feature_grads) = results
    torch.testing.assert_close(chunked, logits)
    for grad, chunked_grad in zip(head_grads + feature_grads, chunked_head_grads + chunked_feature_grads):
        assert grad.abs().sum() > 1e-6
        torch.testing.assert_close(chunked_grad, grad)
