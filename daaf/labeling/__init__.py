"""COCO-pretrained person masks and 17 keypoints for every image of a ReID dataset."""
