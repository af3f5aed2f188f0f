"""Text extractor Lambda: document bytes in S3 -> "DocumentText"/"DocumentTextParts" rows and a search event."""
