//! Azure Files emulator (filled in by the emulator work).
