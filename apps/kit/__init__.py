"""The bottom of the house: generic Django pieces that know no app and hold no domain rule."""
