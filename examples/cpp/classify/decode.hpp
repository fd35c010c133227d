// Decode a JPEG or PNG file into 8-bit RGB the way edgevis's Python side sees it
// (Pillow's decoders + edgevis.data.images.to_rgb).
#pragma once

#include <string>

#include "edgevis/edgevis.hpp"

// Throws edgevis::Error with one line naming the file and why.
edgevis::Image load_image(const std::string& path);
