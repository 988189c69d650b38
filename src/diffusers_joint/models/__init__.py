from .unet_2d_joint import ClassifierHead, JointUNet2DEncoderOutput, JointUNet2DModel

__all__ = ["ClassifierHead", "JointUNet2DEncoderOutput", "JointUNet2DModel"]
