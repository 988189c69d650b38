"""ImagePreprocessor.batch reads a 4-D tensor as the list of its images, whatever their range and channels."""

import numpy as np
import torch

from diffusers_joint.data import ImagePreprocessor


def test_a_batch_tensor_is_read_as_the_list_of_its_images():
    preprocessor = ImagePreprocessor(4, num_channels=1)
    signed = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for batch in (signed, (signed + 1) / 2):
        out = preprocessor.batch(batch)
        # colour tensors become the model's one channel, in a batch as in a list (the batch kept 3 channels)
        assert out.shape == (2, 1, 4, 4)
        torch.testing.assert_close(out, preprocessor.batch(list(batch)), rtol=0, atol=0)
    # a tensor already at the resolution with one channel in [-1, 1] comes back unchanged, not clipped or rescaled
    exact = signed[:, :1, :4, :4]
    torch.testing.assert_close(preprocessor.batch(exact), exact, rtol=0, atol=0)
    # a 4-D uint8 array is read in its dtype's range, as its images are one by one
    array = np.full((2, 4, 4, 1), 255, dtype=np.uint8)
    torch.testing.assert_close(preprocessor.batch(array), torch.ones(2, 1, 4, 4))
