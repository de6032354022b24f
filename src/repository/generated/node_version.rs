pub use root::*;

const _: () = ::planus::check_version_compatibility("planus-1.3.0");

/// The root namespace
///
/// Generated from these locations:
/// * File `schema/node_version.fbs`
#[no_implicit_prelude]
#[allow(clippy::needless_lifetimes)]
mod root {
    /// The namespace `afb`
    ///
    /// Generated from these locations:
    /// * File `schema/node_version.fbs`
    pub mod afb {
        /// The namespace `afb.repository`
        ///
        /// Generated from these locations:
        /// * File `schema/node_version.fbs`
        pub mod repository {
            /// The namespace `afb.repository.fb`
            ///
            /// Generated from these locations:
            /// * File `schema/node_version.fbs`
            pub mod fb {
                /// The enum `NodeKind` in the namespace `afb.repository.fb`
                ///
                /// Generated from these locations:
                /// * Enum `NodeKind` in the file `schema/node_version.fbs:10`
                #[derive(
                    Copy,
                    Clone,
                    Debug,
                    PartialEq,
                    Eq,
                    PartialOrd,
                    Ord,
                    Hash,
                    ::serde::Serialize,
                    ::serde::Deserialize,
                )]
                #[repr(u8)]
                pub enum NodeKind {
                    /// The variant `File` in the enum `NodeKind`
                    File = 0,

                    /// The variant `Directory` in the enum `NodeKind`
                    Directory = 1,

                    /// The variant `Symlink` in the enum `NodeKind`
                    Symlink = 2,

                    /// The variant `Other` in the enum `NodeKind`
                    Other = 3,
                }

                impl NodeKind {
                    /// Array containing all valid variants of NodeKind
                    pub const ENUM_VALUES: [Self; 4] =
                        [Self::File, Self::Directory, Self::Symlink, Self::Other];
                }

                impl ::core::convert::TryFrom<u8> for NodeKind {
                    type Error = ::planus::errors::UnknownEnumTagKind;
                    #[inline]
                    fn try_from(
                        value: u8,
                    ) -> ::core::result::Result<Self, ::planus::errors::UnknownEnumTagKind>
                    {
                        #[allow(clippy::match_single_binding)]
                        match value {
                            0 => ::core::result::Result::Ok(NodeKind::File),
                            1 => ::core::result::Result::Ok(NodeKind::Directory),
                            2 => ::core::result::Result::Ok(NodeKind::Symlink),
                            3 => ::core::result::Result::Ok(NodeKind::Other),

                            _ => {
                                ::core::result::Result::Err(::planus::errors::UnknownEnumTagKind {
                                    tag: value as i128,
                                })
                            }
                        }
                    }
                }

                impl ::core::convert::From<NodeKind> for u8 {
                    #[inline]
                    fn from(value: NodeKind) -> Self {
                        value as u8
                    }
                }

                /// # Safety
                /// The Planus compiler correctly calculates `ALIGNMENT` and `SIZE`.
                unsafe impl ::planus::Primitive for NodeKind {
                    const ALIGNMENT: usize = 1;
                    const SIZE: usize = 1;
                }

                impl ::planus::WriteAsPrimitive<NodeKind> for NodeKind {
                    #[inline]
                    fn write<const N: usize>(
                        &self,
                        cursor: ::planus::Cursor<'_, N>,
                        buffer_position: u32,
                    ) {
                        (*self as u8).write(cursor, buffer_position);
                    }
                }

                impl ::planus::WriteAs<NodeKind> for NodeKind {
                    type Prepared = Self;

                    #[inline]
                    fn prepare(&self, _builder: &mut ::planus::Builder) -> NodeKind {
                        *self
                    }
                }

                impl ::planus::WriteAsDefault<NodeKind, NodeKind> for NodeKind {
                    type Prepared = Self;

                    #[inline]
                    fn prepare(
                        &self,
                        _builder: &mut ::planus::Builder,
                        default: &NodeKind,
                    ) -> ::core::option::Option<NodeKind> {
                        if self == default {
                            ::core::option::Option::None
                        } else {
                            ::core::option::Option::Some(*self)
                        }
                    }
                }

                impl ::planus::WriteAsOptional<NodeKind> for NodeKind {
                    type Prepared = Self;

                    #[inline]
                    fn prepare(
                        &self,
                        _builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<NodeKind> {
                        ::core::option::Option::Some(*self)
                    }
                }

                impl<'buf> ::planus::TableRead<'buf> for NodeKind {
                    #[inline]
                    fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'buf>,
                        offset: usize,
                    ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind>
                    {
                        let n: u8 = ::planus::TableRead::from_buffer(buffer, offset)?;
                        ::core::result::Result::Ok(::core::convert::TryInto::try_into(n)?)
                    }
                }

                impl<'buf> ::planus::VectorReadInner<'buf> for NodeKind {
                    type Error = ::planus::errors::UnknownEnumTag;
                    const STRIDE: usize = 1;
                    #[inline]
                    unsafe fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'buf>,
                        offset: usize,
                    ) -> ::core::result::Result<Self, ::planus::errors::UnknownEnumTag>
                    {
                        let value = unsafe { *buffer.buffer.get_unchecked(offset) };
                        let value: ::core::result::Result<Self, _> =
                            ::core::convert::TryInto::try_into(value);
                        value.map_err(|error_kind| {
                            error_kind.with_error_location(
                                "NodeKind",
                                "VectorRead::from_buffer",
                                buffer.offset_from_start,
                            )
                        })
                    }
                }

                /// # Safety
                /// The planus compiler generates implementations that initialize
                /// the bytes in `write_values`.
                unsafe impl ::planus::VectorWrite<NodeKind> for NodeKind {
                    const STRIDE: usize = 1;

                    type Value = Self;

                    #[inline]
                    fn prepare(&self, _builder: &mut ::planus::Builder) -> Self {
                        *self
                    }

                    #[inline]
                    unsafe fn write_values(
                        values: &[Self],
                        bytes: *mut ::core::mem::MaybeUninit<u8>,
                        buffer_position: u32,
                    ) {
                        let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 1];
                        for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                            ::planus::WriteAsPrimitive::write(
                                v,
                                ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                                buffer_position - i as u32,
                            );
                        }
                    }
                }

                /// The table `KeyValue` in the namespace `afb.repository.fb`
                ///
                /// Generated from these locations:
                /// * Table `KeyValue` in the file `schema/node_version.fbs:18`
                #[derive(
                    Clone,
                    Debug,
                    PartialEq,
                    PartialOrd,
                    Eq,
                    Ord,
                    Hash,
                    ::serde::Serialize,
                    ::serde::Deserialize,
                )]
                pub struct KeyValue {
                    /// The field `key` in the table `KeyValue`
                    pub key: ::core::option::Option<::planus::alloc::string::String>,
                    /// The field `value` in the table `KeyValue`
                    pub value: ::core::option::Option<::planus::alloc::string::String>,
                }

                #[allow(clippy::derivable_impls)]
                impl ::core::default::Default for KeyValue {
                    fn default() -> Self {
                        Self {
                            key: ::core::default::Default::default(),
                            value: ::core::default::Default::default(),
                        }
                    }
                }

                impl KeyValue {
                    /// Creates a [KeyValueBuilder] for serializing an instance of this table.
                    #[inline]
                    pub fn builder() -> KeyValueBuilder<()> {
                        KeyValueBuilder(())
                    }

                    #[allow(clippy::too_many_arguments)]
                    pub fn create(
                        builder: &mut ::planus::Builder,
                        field_key: impl ::planus::WriteAsOptional<
                            ::planus::Offset<::core::primitive::str>,
                        >,
                        field_value: impl ::planus::WriteAsOptional<
                            ::planus::Offset<::core::primitive::str>,
                        >,
                    ) -> ::planus::Offset<Self> {
                        let prepared_key = field_key.prepare(builder);
                        let prepared_value = field_value.prepare(builder);

                        let mut table_writer: ::planus::table_writer::TableWriter<8> =
                            ::core::default::Default::default();
                        if prepared_key.is_some() {
                            table_writer.write_entry::<::planus::Offset<str>>(0);
                        }
                        if prepared_value.is_some() {
                            table_writer.write_entry::<::planus::Offset<str>>(1);
                        }

                        unsafe {
                            table_writer.finish(builder, |object_writer| {
                                if let ::core::option::Option::Some(prepared_key) = prepared_key {
                                    object_writer.write::<_, _, 4>(&prepared_key);
                                }
                                if let ::core::option::Option::Some(prepared_value) = prepared_value
                                {
                                    object_writer.write::<_, _, 4>(&prepared_value);
                                }
                            });
                        }
                        builder.current_offset()
                    }
                }

                impl ::planus::WriteAs<::planus::Offset<KeyValue>> for KeyValue {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<KeyValue> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl ::planus::WriteAsOptional<::planus::Offset<KeyValue>> for KeyValue {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<KeyValue>> {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl ::planus::WriteAsOffset<KeyValue> for KeyValue {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<KeyValue> {
                        KeyValue::create(builder, &self.key, &self.value)
                    }
                }

                /// Builder for serializing an instance of the [KeyValue] type.
                ///
                /// Can be created using the [KeyValue::builder] method.
                #[derive(Debug)]
                #[must_use]
                pub struct KeyValueBuilder<State>(State);

                impl KeyValueBuilder<()> {
                    /// Setter for the [`key` field](KeyValue#structfield.key).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn key<T0>(self, value: T0) -> KeyValueBuilder<(T0,)>
                    where
                        T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    {
                        KeyValueBuilder((value,))
                    }

                    /// Sets the [`key` field](KeyValue#structfield.key) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn key_as_null(self) -> KeyValueBuilder<((),)> {
                        self.key(())
                    }
                }

                impl<T0> KeyValueBuilder<(T0,)> {
                    /// Setter for the [`value` field](KeyValue#structfield.value).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn value<T1>(self, value: T1) -> KeyValueBuilder<(T0, T1)>
                    where
                        T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    {
                        let (v0,) = self.0;
                        KeyValueBuilder((v0, value))
                    }

                    /// Sets the [`value` field](KeyValue#structfield.value) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn value_as_null(self) -> KeyValueBuilder<(T0, ())> {
                        self.value(())
                    }
                }

                impl<T0, T1> KeyValueBuilder<(T0, T1)> {
                    /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [KeyValue].
                    #[inline]
                    pub fn finish(
                        self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<KeyValue>
                    where
                        Self: ::planus::WriteAsOffset<KeyValue>,
                    {
                        ::planus::WriteAsOffset::prepare(&self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                        T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    > ::planus::WriteAs<::planus::Offset<KeyValue>> for KeyValueBuilder<(T0, T1)>
                {
                    type Prepared = ::planus::Offset<KeyValue>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<KeyValue> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                        T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    > ::planus::WriteAsOptional<::planus::Offset<KeyValue>>
                    for KeyValueBuilder<(T0, T1)>
                {
                    type Prepared = ::planus::Offset<KeyValue>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<KeyValue>> {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl<
                        T0: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                        T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    > ::planus::WriteAsOffset<KeyValue> for KeyValueBuilder<(T0, T1)>
                {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<KeyValue> {
                        let (v0, v1) = &self.0;
                        KeyValue::create(builder, v0, v1)
                    }
                }

                /// Reference to a deserialized [KeyValue].
                #[derive(Copy, Clone)]
                pub struct KeyValueRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

                impl<'a> KeyValueRef<'a> {
                    /// Getter for the [`key` field](KeyValue#structfield.key).
                    #[inline]
                    pub fn key(
                        &self,
                    ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>>
                    {
                        self.0.access(0, "KeyValue", "key")
                    }

                    /// Getter for the [`value` field](KeyValue#structfield.value).
                    #[inline]
                    pub fn value(
                        &self,
                    ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>>
                    {
                        self.0.access(1, "KeyValue", "value")
                    }
                }

                impl<'a> ::core::fmt::Debug for KeyValueRef<'a> {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        let mut f = f.debug_struct("KeyValueRef");
                        if let ::core::option::Option::Some(field_key) = self.key().transpose() {
                            f.field("key", &field_key);
                        }
                        if let ::core::option::Option::Some(field_value) = self.value().transpose()
                        {
                            f.field("value", &field_value);
                        }
                        f.finish()
                    }
                }

                impl<'a> ::core::convert::TryFrom<KeyValueRef<'a>> for KeyValue {
                    type Error = ::planus::Error;

                    #[allow(unreachable_code)]
                    fn try_from(value: KeyValueRef<'a>) -> ::planus::Result<Self> {
                        ::core::result::Result::Ok(Self {
                            key: value.key()?.map(::core::convert::Into::into),
                            value: value.value()?.map(::core::convert::Into::into),
                        })
                    }
                }

                impl<'a> ::planus::TableRead<'a> for KeyValueRef<'a> {
                    #[inline]
                    fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind>
                    {
                        ::core::result::Result::Ok(Self(
                            ::planus::table_reader::Table::from_buffer(buffer, offset)?,
                        ))
                    }
                }

                impl<'a> ::planus::VectorReadInner<'a> for KeyValueRef<'a> {
                    type Error = ::planus::Error;
                    const STRIDE: usize = 4;

                    unsafe fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                            error_kind.with_error_location(
                                "[KeyValueRef]",
                                "get",
                                buffer.offset_from_start,
                            )
                        })
                    }
                }

                /// # Safety
                /// The planus compiler generates implementations that initialize
                /// the bytes in `write_values`.
                unsafe impl ::planus::VectorWrite<::planus::Offset<KeyValue>> for KeyValue {
                    type Value = ::planus::Offset<KeyValue>;
                    const STRIDE: usize = 4;
                    #[inline]
                    fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                        ::planus::WriteAs::prepare(self, builder)
                    }

                    #[inline]
                    unsafe fn write_values(
                        values: &[::planus::Offset<KeyValue>],
                        bytes: *mut ::core::mem::MaybeUninit<u8>,
                        buffer_position: u32,
                    ) {
                        let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                        for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                            ::planus::WriteAsPrimitive::write(
                                v,
                                ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                                buffer_position - (Self::STRIDE * i) as u32,
                            );
                        }
                    }
                }

                impl<'a> ::planus::ReadAsRoot<'a> for KeyValueRef<'a> {
                    fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(
                            ::planus::SliceWithStartOffset {
                                buffer: slice,
                                offset_from_start: 0,
                            },
                            0,
                        )
                        .map_err(|error_kind| {
                            error_kind.with_error_location("[KeyValueRef]", "read_as_root", 0)
                        })
                    }
                }

                /// The table `NfsAttributes` in the namespace `afb.repository.fb`
                ///
                /// Generated from these locations:
                /// * Table `NfsAttributes` in the file `schema/node_version.fbs:24`
                #[derive(
                    Clone,
                    Debug,
                    PartialEq,
                    PartialOrd,
                    Eq,
                    Ord,
                    Hash,
                    ::serde::Serialize,
                    ::serde::Deserialize,
                )]
                pub struct NfsAttributes {
                    /// The field `mode` in the table `NfsAttributes`
                    pub mode: u32,
                    /// The field `owner` in the table `NfsAttributes`
                    pub owner: u32,
                    /// The field `group` in the table `NfsAttributes`
                    pub group: u32,
                }

                #[allow(clippy::derivable_impls)]
                impl ::core::default::Default for NfsAttributes {
                    fn default() -> Self {
                        Self {
                            mode: 0,
                            owner: 0,
                            group: 0,
                        }
                    }
                }

                impl NfsAttributes {
                    /// Creates a [NfsAttributesBuilder] for serializing an instance of this table.
                    #[inline]
                    pub fn builder() -> NfsAttributesBuilder<()> {
                        NfsAttributesBuilder(())
                    }

                    #[allow(clippy::too_many_arguments)]
                    pub fn create(
                        builder: &mut ::planus::Builder,
                        field_mode: impl ::planus::WriteAsDefault<u32, u32>,
                        field_owner: impl ::planus::WriteAsDefault<u32, u32>,
                        field_group: impl ::planus::WriteAsDefault<u32, u32>,
                    ) -> ::planus::Offset<Self> {
                        let prepared_mode = field_mode.prepare(builder, &0);
                        let prepared_owner = field_owner.prepare(builder, &0);
                        let prepared_group = field_group.prepare(builder, &0);

                        let mut table_writer: ::planus::table_writer::TableWriter<10> =
                            ::core::default::Default::default();
                        if prepared_mode.is_some() {
                            table_writer.write_entry::<u32>(0);
                        }
                        if prepared_owner.is_some() {
                            table_writer.write_entry::<u32>(1);
                        }
                        if prepared_group.is_some() {
                            table_writer.write_entry::<u32>(2);
                        }

                        unsafe {
                            table_writer.finish(builder, |object_writer| {
                                if let ::core::option::Option::Some(prepared_mode) = prepared_mode {
                                    object_writer.write::<_, _, 4>(&prepared_mode);
                                }
                                if let ::core::option::Option::Some(prepared_owner) = prepared_owner
                                {
                                    object_writer.write::<_, _, 4>(&prepared_owner);
                                }
                                if let ::core::option::Option::Some(prepared_group) = prepared_group
                                {
                                    object_writer.write::<_, _, 4>(&prepared_group);
                                }
                            });
                        }
                        builder.current_offset()
                    }
                }

                impl ::planus::WriteAs<::planus::Offset<NfsAttributes>> for NfsAttributes {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NfsAttributes> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl ::planus::WriteAsOptional<::planus::Offset<NfsAttributes>> for NfsAttributes {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<NfsAttributes>>
                    {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl ::planus::WriteAsOffset<NfsAttributes> for NfsAttributes {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NfsAttributes> {
                        NfsAttributes::create(builder, self.mode, self.owner, self.group)
                    }
                }

                /// Builder for serializing an instance of the [NfsAttributes] type.
                ///
                /// Can be created using the [NfsAttributes::builder] method.
                #[derive(Debug)]
                #[must_use]
                pub struct NfsAttributesBuilder<State>(State);

                impl NfsAttributesBuilder<()> {
                    /// Setter for the [`mode` field](NfsAttributes#structfield.mode).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn mode<T0>(self, value: T0) -> NfsAttributesBuilder<(T0,)>
                    where
                        T0: ::planus::WriteAsDefault<u32, u32>,
                    {
                        NfsAttributesBuilder((value,))
                    }

                    /// Sets the [`mode` field](NfsAttributes#structfield.mode) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn mode_as_default(
                        self,
                    ) -> NfsAttributesBuilder<(::planus::DefaultValue,)> {
                        self.mode(::planus::DefaultValue)
                    }
                }

                impl<T0> NfsAttributesBuilder<(T0,)> {
                    /// Setter for the [`owner` field](NfsAttributes#structfield.owner).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn owner<T1>(self, value: T1) -> NfsAttributesBuilder<(T0, T1)>
                    where
                        T1: ::planus::WriteAsDefault<u32, u32>,
                    {
                        let (v0,) = self.0;
                        NfsAttributesBuilder((v0, value))
                    }

                    /// Sets the [`owner` field](NfsAttributes#structfield.owner) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn owner_as_default(
                        self,
                    ) -> NfsAttributesBuilder<(T0, ::planus::DefaultValue)> {
                        self.owner(::planus::DefaultValue)
                    }
                }

                impl<T0, T1> NfsAttributesBuilder<(T0, T1)> {
                    /// Setter for the [`group` field](NfsAttributes#structfield.group).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn group<T2>(self, value: T2) -> NfsAttributesBuilder<(T0, T1, T2)>
                    where
                        T2: ::planus::WriteAsDefault<u32, u32>,
                    {
                        let (v0, v1) = self.0;
                        NfsAttributesBuilder((v0, v1, value))
                    }

                    /// Sets the [`group` field](NfsAttributes#structfield.group) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn group_as_default(
                        self,
                    ) -> NfsAttributesBuilder<(T0, T1, ::planus::DefaultValue)>
                    {
                        self.group(::planus::DefaultValue)
                    }
                }

                impl<T0, T1, T2> NfsAttributesBuilder<(T0, T1, T2)> {
                    /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [NfsAttributes].
                    #[inline]
                    pub fn finish(
                        self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NfsAttributes>
                    where
                        Self: ::planus::WriteAsOffset<NfsAttributes>,
                    {
                        ::planus::WriteAsOffset::prepare(&self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsDefault<u32, u32>,
                        T1: ::planus::WriteAsDefault<u32, u32>,
                        T2: ::planus::WriteAsDefault<u32, u32>,
                    > ::planus::WriteAs<::planus::Offset<NfsAttributes>>
                    for NfsAttributesBuilder<(T0, T1, T2)>
                {
                    type Prepared = ::planus::Offset<NfsAttributes>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NfsAttributes> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsDefault<u32, u32>,
                        T1: ::planus::WriteAsDefault<u32, u32>,
                        T2: ::planus::WriteAsDefault<u32, u32>,
                    > ::planus::WriteAsOptional<::planus::Offset<NfsAttributes>>
                    for NfsAttributesBuilder<(T0, T1, T2)>
                {
                    type Prepared = ::planus::Offset<NfsAttributes>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<NfsAttributes>>
                    {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl<
                        T0: ::planus::WriteAsDefault<u32, u32>,
                        T1: ::planus::WriteAsDefault<u32, u32>,
                        T2: ::planus::WriteAsDefault<u32, u32>,
                    > ::planus::WriteAsOffset<NfsAttributes>
                    for NfsAttributesBuilder<(T0, T1, T2)>
                {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NfsAttributes> {
                        let (v0, v1, v2) = &self.0;
                        NfsAttributes::create(builder, v0, v1, v2)
                    }
                }

                /// Reference to a deserialized [NfsAttributes].
                #[derive(Copy, Clone)]
                pub struct NfsAttributesRef<'a>(
                    #[allow(dead_code)] ::planus::table_reader::Table<'a>,
                );

                impl<'a> NfsAttributesRef<'a> {
                    /// Getter for the [`mode` field](NfsAttributes#structfield.mode).
                    #[inline]
                    pub fn mode(&self) -> ::planus::Result<u32> {
                        ::core::result::Result::Ok(
                            self.0.access(0, "NfsAttributes", "mode")?.unwrap_or(0),
                        )
                    }

                    /// Getter for the [`owner` field](NfsAttributes#structfield.owner).
                    #[inline]
                    pub fn owner(&self) -> ::planus::Result<u32> {
                        ::core::result::Result::Ok(
                            self.0.access(1, "NfsAttributes", "owner")?.unwrap_or(0),
                        )
                    }

                    /// Getter for the [`group` field](NfsAttributes#structfield.group).
                    #[inline]
                    pub fn group(&self) -> ::planus::Result<u32> {
                        ::core::result::Result::Ok(
                            self.0.access(2, "NfsAttributes", "group")?.unwrap_or(0),
                        )
                    }
                }

                impl<'a> ::core::fmt::Debug for NfsAttributesRef<'a> {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        let mut f = f.debug_struct("NfsAttributesRef");
                        f.field("mode", &self.mode());
                        f.field("owner", &self.owner());
                        f.field("group", &self.group());
                        f.finish()
                    }
                }

                impl<'a> ::core::convert::TryFrom<NfsAttributesRef<'a>> for NfsAttributes {
                    type Error = ::planus::Error;

                    #[allow(unreachable_code)]
                    fn try_from(value: NfsAttributesRef<'a>) -> ::planus::Result<Self> {
                        ::core::result::Result::Ok(Self {
                            mode: ::core::convert::TryInto::try_into(value.mode()?)?,
                            owner: ::core::convert::TryInto::try_into(value.owner()?)?,
                            group: ::core::convert::TryInto::try_into(value.group()?)?,
                        })
                    }
                }

                impl<'a> ::planus::TableRead<'a> for NfsAttributesRef<'a> {
                    #[inline]
                    fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind>
                    {
                        ::core::result::Result::Ok(Self(
                            ::planus::table_reader::Table::from_buffer(buffer, offset)?,
                        ))
                    }
                }

                impl<'a> ::planus::VectorReadInner<'a> for NfsAttributesRef<'a> {
                    type Error = ::planus::Error;
                    const STRIDE: usize = 4;

                    unsafe fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                            error_kind.with_error_location(
                                "[NfsAttributesRef]",
                                "get",
                                buffer.offset_from_start,
                            )
                        })
                    }
                }

                /// # Safety
                /// The planus compiler generates implementations that initialize
                /// the bytes in `write_values`.
                unsafe impl ::planus::VectorWrite<::planus::Offset<NfsAttributes>> for NfsAttributes {
                    type Value = ::planus::Offset<NfsAttributes>;
                    const STRIDE: usize = 4;
                    #[inline]
                    fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                        ::planus::WriteAs::prepare(self, builder)
                    }

                    #[inline]
                    unsafe fn write_values(
                        values: &[::planus::Offset<NfsAttributes>],
                        bytes: *mut ::core::mem::MaybeUninit<u8>,
                        buffer_position: u32,
                    ) {
                        let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                        for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                            ::planus::WriteAsPrimitive::write(
                                v,
                                ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                                buffer_position - (Self::STRIDE * i) as u32,
                            );
                        }
                    }
                }

                impl<'a> ::planus::ReadAsRoot<'a> for NfsAttributesRef<'a> {
                    fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(
                            ::planus::SliceWithStartOffset {
                                buffer: slice,
                                offset_from_start: 0,
                            },
                            0,
                        )
                        .map_err(|error_kind| {
                            error_kind.with_error_location("[NfsAttributesRef]", "read_as_root", 0)
                        })
                    }
                }

                /// The table `BundleRef` in the namespace `afb.repository.fb`
                ///
                /// Generated from these locations:
                /// * Table `BundleRef` in the file `schema/node_version.fbs:31`
                #[derive(
                    Clone,
                    Debug,
                    PartialEq,
                    PartialOrd,
                    Eq,
                    Ord,
                    Hash,
                    ::serde::Serialize,
                    ::serde::Deserialize,
                )]
                pub struct BundleRef {
                    /// The field `bundle_id` in the table `BundleRef`
                    pub bundle_id: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
                    /// The field `member` in the table `BundleRef`
                    pub member: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
                    /// The field `offset` in the table `BundleRef`
                    pub offset: u64,
                    /// The field `length` in the table `BundleRef`
                    pub length: u64,
                }

                #[allow(clippy::derivable_impls)]
                impl ::core::default::Default for BundleRef {
                    fn default() -> Self {
                        Self {
                            bundle_id: ::core::default::Default::default(),
                            member: ::core::default::Default::default(),
                            offset: 0,
                            length: 0,
                        }
                    }
                }

                impl BundleRef {
                    /// Creates a [BundleRefBuilder] for serializing an instance of this table.
                    #[inline]
                    pub fn builder() -> BundleRefBuilder<()> {
                        BundleRefBuilder(())
                    }

                    #[allow(clippy::too_many_arguments)]
                    pub fn create(
                        builder: &mut ::planus::Builder,
                        field_bundle_id: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        field_member: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        field_offset: impl ::planus::WriteAsDefault<u64, u64>,
                        field_length: impl ::planus::WriteAsDefault<u64, u64>,
                    ) -> ::planus::Offset<Self> {
                        let prepared_bundle_id = field_bundle_id.prepare(builder);
                        let prepared_member = field_member.prepare(builder);
                        let prepared_offset = field_offset.prepare(builder, &0);
                        let prepared_length = field_length.prepare(builder, &0);

                        let mut table_writer: ::planus::table_writer::TableWriter<12> =
                            ::core::default::Default::default();
                        if prepared_offset.is_some() {
                            table_writer.write_entry::<u64>(2);
                        }
                        if prepared_length.is_some() {
                            table_writer.write_entry::<u64>(3);
                        }
                        if prepared_bundle_id.is_some() {
                            table_writer.write_entry::<::planus::Offset<[u8]>>(0);
                        }
                        if prepared_member.is_some() {
                            table_writer.write_entry::<::planus::Offset<[u8]>>(1);
                        }

                        unsafe {
                            table_writer.finish(builder, |object_writer| {
                                if let ::core::option::Option::Some(prepared_offset) =
                                    prepared_offset
                                {
                                    object_writer.write::<_, _, 8>(&prepared_offset);
                                }
                                if let ::core::option::Option::Some(prepared_length) =
                                    prepared_length
                                {
                                    object_writer.write::<_, _, 8>(&prepared_length);
                                }
                                if let ::core::option::Option::Some(prepared_bundle_id) =
                                    prepared_bundle_id
                                {
                                    object_writer.write::<_, _, 4>(&prepared_bundle_id);
                                }
                                if let ::core::option::Option::Some(prepared_member) =
                                    prepared_member
                                {
                                    object_writer.write::<_, _, 4>(&prepared_member);
                                }
                            });
                        }
                        builder.current_offset()
                    }
                }

                impl ::planus::WriteAs<::planus::Offset<BundleRef>> for BundleRef {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<BundleRef> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl ::planus::WriteAsOptional<::planus::Offset<BundleRef>> for BundleRef {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<BundleRef>> {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl ::planus::WriteAsOffset<BundleRef> for BundleRef {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<BundleRef> {
                        BundleRef::create(
                            builder,
                            &self.bundle_id,
                            &self.member,
                            self.offset,
                            self.length,
                        )
                    }
                }

                /// Builder for serializing an instance of the [BundleRef] type.
                ///
                /// Can be created using the [BundleRef::builder] method.
                #[derive(Debug)]
                #[must_use]
                pub struct BundleRefBuilder<State>(State);

                impl BundleRefBuilder<()> {
                    /// Setter for the [`bundle_id` field](BundleRef#structfield.bundle_id).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn bundle_id<T0>(self, value: T0) -> BundleRefBuilder<(T0,)>
                    where
                        T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                    {
                        BundleRefBuilder((value,))
                    }

                    /// Sets the [`bundle_id` field](BundleRef#structfield.bundle_id) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn bundle_id_as_null(self) -> BundleRefBuilder<((),)> {
                        self.bundle_id(())
                    }
                }

                impl<T0> BundleRefBuilder<(T0,)> {
                    /// Setter for the [`member` field](BundleRef#structfield.member).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn member<T1>(self, value: T1) -> BundleRefBuilder<(T0, T1)>
                    where
                        T1: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                    {
                        let (v0,) = self.0;
                        BundleRefBuilder((v0, value))
                    }

                    /// Sets the [`member` field](BundleRef#structfield.member) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn member_as_null(self) -> BundleRefBuilder<(T0, ())> {
                        self.member(())
                    }
                }

                impl<T0, T1> BundleRefBuilder<(T0, T1)> {
                    /// Setter for the [`offset` field](BundleRef#structfield.offset).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn offset<T2>(self, value: T2) -> BundleRefBuilder<(T0, T1, T2)>
                    where
                        T2: ::planus::WriteAsDefault<u64, u64>,
                    {
                        let (v0, v1) = self.0;
                        BundleRefBuilder((v0, v1, value))
                    }

                    /// Sets the [`offset` field](BundleRef#structfield.offset) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn offset_as_default(
                        self,
                    ) -> BundleRefBuilder<(T0, T1, ::planus::DefaultValue)> {
                        self.offset(::planus::DefaultValue)
                    }
                }

                impl<T0, T1, T2> BundleRefBuilder<(T0, T1, T2)> {
                    /// Setter for the [`length` field](BundleRef#structfield.length).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn length<T3>(self, value: T3) -> BundleRefBuilder<(T0, T1, T2, T3)>
                    where
                        T3: ::planus::WriteAsDefault<u64, u64>,
                    {
                        let (v0, v1, v2) = self.0;
                        BundleRefBuilder((v0, v1, v2, value))
                    }

                    /// Sets the [`length` field](BundleRef#structfield.length) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn length_as_default(
                        self,
                    ) -> BundleRefBuilder<(T0, T1, T2, ::planus::DefaultValue)>
                    {
                        self.length(::planus::DefaultValue)
                    }
                }

                impl<T0, T1, T2, T3> BundleRefBuilder<(T0, T1, T2, T3)> {
                    /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [BundleRef].
                    #[inline]
                    pub fn finish(
                        self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<BundleRef>
                    where
                        Self: ::planus::WriteAsOffset<BundleRef>,
                    {
                        ::planus::WriteAsOffset::prepare(&self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T1: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T2: ::planus::WriteAsDefault<u64, u64>,
                        T3: ::planus::WriteAsDefault<u64, u64>,
                    > ::planus::WriteAs<::planus::Offset<BundleRef>>
                    for BundleRefBuilder<(T0, T1, T2, T3)>
                {
                    type Prepared = ::planus::Offset<BundleRef>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<BundleRef> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T1: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T2: ::planus::WriteAsDefault<u64, u64>,
                        T3: ::planus::WriteAsDefault<u64, u64>,
                    > ::planus::WriteAsOptional<::planus::Offset<BundleRef>>
                    for BundleRefBuilder<(T0, T1, T2, T3)>
                {
                    type Prepared = ::planus::Offset<BundleRef>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<BundleRef>> {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl<
                        T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T1: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T2: ::planus::WriteAsDefault<u64, u64>,
                        T3: ::planus::WriteAsDefault<u64, u64>,
                    > ::planus::WriteAsOffset<BundleRef> for BundleRefBuilder<(T0, T1, T2, T3)>
                {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<BundleRef> {
                        let (v0, v1, v2, v3) = &self.0;
                        BundleRef::create(builder, v0, v1, v2, v3)
                    }
                }

                /// Reference to a deserialized [BundleRef].
                #[derive(Copy, Clone)]
                pub struct BundleRefRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

                impl<'a> BundleRefRef<'a> {
                    /// Getter for the [`bundle_id` field](BundleRef#structfield.bundle_id).
                    #[inline]
                    pub fn bundle_id(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                        self.0.access(0, "BundleRef", "bundle_id")
                    }

                    /// Getter for the [`member` field](BundleRef#structfield.member).
                    #[inline]
                    pub fn member(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                        self.0.access(1, "BundleRef", "member")
                    }

                    /// Getter for the [`offset` field](BundleRef#structfield.offset).
                    #[inline]
                    pub fn offset(&self) -> ::planus::Result<u64> {
                        ::core::result::Result::Ok(
                            self.0.access(2, "BundleRef", "offset")?.unwrap_or(0),
                        )
                    }

                    /// Getter for the [`length` field](BundleRef#structfield.length).
                    #[inline]
                    pub fn length(&self) -> ::planus::Result<u64> {
                        ::core::result::Result::Ok(
                            self.0.access(3, "BundleRef", "length")?.unwrap_or(0),
                        )
                    }
                }

                impl<'a> ::core::fmt::Debug for BundleRefRef<'a> {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        let mut f = f.debug_struct("BundleRefRef");
                        if let ::core::option::Option::Some(field_bundle_id) =
                            self.bundle_id().transpose()
                        {
                            f.field("bundle_id", &field_bundle_id);
                        }
                        if let ::core::option::Option::Some(field_member) =
                            self.member().transpose()
                        {
                            f.field("member", &field_member);
                        }
                        f.field("offset", &self.offset());
                        f.field("length", &self.length());
                        f.finish()
                    }
                }

                impl<'a> ::core::convert::TryFrom<BundleRefRef<'a>> for BundleRef {
                    type Error = ::planus::Error;

                    #[allow(unreachable_code)]
                    fn try_from(value: BundleRefRef<'a>) -> ::planus::Result<Self> {
                        ::core::result::Result::Ok(Self {
                            bundle_id: value.bundle_id()?.map(|v| v.to_vec()),
                            member: value.member()?.map(|v| v.to_vec()),
                            offset: ::core::convert::TryInto::try_into(value.offset()?)?,
                            length: ::core::convert::TryInto::try_into(value.length()?)?,
                        })
                    }
                }

                impl<'a> ::planus::TableRead<'a> for BundleRefRef<'a> {
                    #[inline]
                    fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind>
                    {
                        ::core::result::Result::Ok(Self(
                            ::planus::table_reader::Table::from_buffer(buffer, offset)?,
                        ))
                    }
                }

                impl<'a> ::planus::VectorReadInner<'a> for BundleRefRef<'a> {
                    type Error = ::planus::Error;
                    const STRIDE: usize = 4;

                    unsafe fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                            error_kind.with_error_location(
                                "[BundleRefRef]",
                                "get",
                                buffer.offset_from_start,
                            )
                        })
                    }
                }

                /// # Safety
                /// The planus compiler generates implementations that initialize
                /// the bytes in `write_values`.
                unsafe impl ::planus::VectorWrite<::planus::Offset<BundleRef>> for BundleRef {
                    type Value = ::planus::Offset<BundleRef>;
                    const STRIDE: usize = 4;
                    #[inline]
                    fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                        ::planus::WriteAs::prepare(self, builder)
                    }

                    #[inline]
                    unsafe fn write_values(
                        values: &[::planus::Offset<BundleRef>],
                        bytes: *mut ::core::mem::MaybeUninit<u8>,
                        buffer_position: u32,
                    ) {
                        let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                        for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                            ::planus::WriteAsPrimitive::write(
                                v,
                                ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                                buffer_position - (Self::STRIDE * i) as u32,
                            );
                        }
                    }
                }

                impl<'a> ::planus::ReadAsRoot<'a> for BundleRefRef<'a> {
                    fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(
                            ::planus::SliceWithStartOffset {
                                buffer: slice,
                                offset_from_start: 0,
                            },
                            0,
                        )
                        .map_err(|error_kind| {
                            error_kind.with_error_location("[BundleRefRef]", "read_as_root", 0)
                        })
                    }
                }

                /// The table `NodeVersion` in the namespace `afb.repository.fb`
                ///
                /// Generated from these locations:
                /// * Table `NodeVersion` in the file `schema/node_version.fbs:39`
                #[derive(
                    Clone,
                    Debug,
                    PartialEq,
                    PartialOrd,
                    Eq,
                    Ord,
                    Hash,
                    ::serde::Serialize,
                    ::serde::Deserialize,
                )]
                pub struct NodeVersion {
                    /// The field `node_id` in the table `NodeVersion`
                    pub node_id: u64,
                    /// The field `parent_id` in the table `NodeVersion`
                    pub parent_id: u64,
                    /// The field `name` in the table `NodeVersion`
                    pub name: ::core::option::Option<::planus::alloc::string::String>,
                    /// The field `kind` in the table `NodeVersion`
                    pub kind: self::NodeKind,
                    /// The field `size` in the table `NodeVersion`
                    pub size: u64,
                    /// The field `attributes` in the table `NodeVersion`
                    pub attributes: u32,
                    /// The field `creation_time_ns` in the table `NodeVersion`
                    pub creation_time_ns: i64,
                    /// The field `last_write_time_ns` in the table `NodeVersion`
                    pub last_write_time_ns: i64,
                    /// The field `change_time_ns` in the table `NodeVersion`
                    pub change_time_ns: i64,
                    /// The field `permission_key` in the table `NodeVersion`
                    pub permission_key: ::core::option::Option<::planus::alloc::string::String>,
                    /// The field `permission_id` in the table `NodeVersion`
                    pub permission_id: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
                    /// The field `nfs` in the table `NodeVersion`
                    pub nfs:
                        ::core::option::Option<::planus::alloc::boxed::Box<self::NfsAttributes>>,
                    /// The field `metadata` in the table `NodeVersion`
                    pub metadata: ::core::option::Option<::planus::alloc::vec::Vec<self::KeyValue>>,
                    /// The field `chunk_ids` in the table `NodeVersion`
                    pub chunk_ids: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
                    /// The field `chunk_lengths` in the table `NodeVersion`
                    pub chunk_lengths: ::core::option::Option<::planus::alloc::vec::Vec<u32>>,
                    /// The field `bundle` in the table `NodeVersion`
                    pub bundle:
                        ::core::option::Option<::planus::alloc::boxed::Box<self::BundleRef>>,
                    /// The field `xorhash` in the table `NodeVersion`
                    pub xorhash: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
                    /// The field `symlink_target` in the table `NodeVersion`
                    pub symlink_target: ::core::option::Option<::planus::alloc::string::String>,
                }

                #[allow(clippy::derivable_impls)]
                impl ::core::default::Default for NodeVersion {
                    fn default() -> Self {
                        Self {
                            node_id: 0,
                            parent_id: 0,
                            name: ::core::default::Default::default(),
                            kind: self::NodeKind::File,
                            size: 0,
                            attributes: 0,
                            creation_time_ns: 0,
                            last_write_time_ns: 0,
                            change_time_ns: 0,
                            permission_key: ::core::default::Default::default(),
                            permission_id: ::core::default::Default::default(),
                            nfs: ::core::default::Default::default(),
                            metadata: ::core::default::Default::default(),
                            chunk_ids: ::core::default::Default::default(),
                            chunk_lengths: ::core::default::Default::default(),
                            bundle: ::core::default::Default::default(),
                            xorhash: ::core::default::Default::default(),
                            symlink_target: ::core::default::Default::default(),
                        }
                    }
                }

                impl NodeVersion {
                    /// Creates a [NodeVersionBuilder] for serializing an instance of this table.
                    #[inline]
                    pub fn builder() -> NodeVersionBuilder<()> {
                        NodeVersionBuilder(())
                    }

                    #[allow(clippy::too_many_arguments)]
                    pub fn create(
                        builder: &mut ::planus::Builder,
                        field_node_id: impl ::planus::WriteAsDefault<u64, u64>,
                        field_parent_id: impl ::planus::WriteAsDefault<u64, u64>,
                        field_name: impl ::planus::WriteAsOptional<
                            ::planus::Offset<::core::primitive::str>,
                        >,
                        field_kind: impl ::planus::WriteAsDefault<self::NodeKind, self::NodeKind>,
                        field_size: impl ::planus::WriteAsDefault<u64, u64>,
                        field_attributes: impl ::planus::WriteAsDefault<u32, u32>,
                        field_creation_time_ns: impl ::planus::WriteAsDefault<i64, i64>,
                        field_last_write_time_ns: impl ::planus::WriteAsDefault<i64, i64>,
                        field_change_time_ns: impl ::planus::WriteAsDefault<i64, i64>,
                        field_permission_key: impl ::planus::WriteAsOptional<
                            ::planus::Offset<::core::primitive::str>,
                        >,
                        field_permission_id: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        field_nfs: impl ::planus::WriteAsOptional<::planus::Offset<self::NfsAttributes>>,
                        field_metadata: impl ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::KeyValue>]>,
                        >,
                        field_chunk_ids: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        field_chunk_lengths: impl ::planus::WriteAsOptional<::planus::Offset<[u32]>>,
                        field_bundle: impl ::planus::WriteAsOptional<::planus::Offset<self::BundleRef>>,
                        field_xorhash: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        field_symlink_target: impl ::planus::WriteAsOptional<
                            ::planus::Offset<::core::primitive::str>,
                        >,
                    ) -> ::planus::Offset<Self> {
                        let prepared_node_id = field_node_id.prepare(builder, &0);
                        let prepared_parent_id = field_parent_id.prepare(builder, &0);
                        let prepared_name = field_name.prepare(builder);
                        let prepared_kind = field_kind.prepare(builder, &self::NodeKind::File);
                        let prepared_size = field_size.prepare(builder, &0);
                        let prepared_attributes = field_attributes.prepare(builder, &0);
                        let prepared_creation_time_ns = field_creation_time_ns.prepare(builder, &0);
                        let prepared_last_write_time_ns =
                            field_last_write_time_ns.prepare(builder, &0);
                        let prepared_change_time_ns = field_change_time_ns.prepare(builder, &0);
                        let prepared_permission_key = field_permission_key.prepare(builder);
                        let prepared_permission_id = field_permission_id.prepare(builder);
                        let prepared_nfs = field_nfs.prepare(builder);
                        let prepared_metadata = field_metadata.prepare(builder);
                        let prepared_chunk_ids = field_chunk_ids.prepare(builder);
                        let prepared_chunk_lengths = field_chunk_lengths.prepare(builder);
                        let prepared_bundle = field_bundle.prepare(builder);
                        let prepared_xorhash = field_xorhash.prepare(builder);
                        let prepared_symlink_target = field_symlink_target.prepare(builder);

                        let mut table_writer: ::planus::table_writer::TableWriter<40> =
                            ::core::default::Default::default();
                        if prepared_node_id.is_some() {
                            table_writer.write_entry::<u64>(0);
                        }
                        if prepared_parent_id.is_some() {
                            table_writer.write_entry::<u64>(1);
                        }
                        if prepared_size.is_some() {
                            table_writer.write_entry::<u64>(4);
                        }
                        if prepared_creation_time_ns.is_some() {
                            table_writer.write_entry::<i64>(6);
                        }
                        if prepared_last_write_time_ns.is_some() {
                            table_writer.write_entry::<i64>(7);
                        }
                        if prepared_change_time_ns.is_some() {
                            table_writer.write_entry::<i64>(8);
                        }
                        if prepared_name.is_some() {
                            table_writer.write_entry::<::planus::Offset<str>>(2);
                        }
                        if prepared_attributes.is_some() {
                            table_writer.write_entry::<u32>(5);
                        }
                        if prepared_permission_key.is_some() {
                            table_writer.write_entry::<::planus::Offset<str>>(9);
                        }
                        if prepared_permission_id.is_some() {
                            table_writer.write_entry::<::planus::Offset<[u8]>>(10);
                        }
                        if prepared_nfs.is_some() {
                            table_writer.write_entry::<::planus::Offset<self::NfsAttributes>>(11);
                        }
                        if prepared_metadata.is_some() {
                            table_writer.write_entry::<::planus::Offset<[::planus::Offset<self::KeyValue>]>>(12);
                        }
                        if prepared_chunk_ids.is_some() {
                            table_writer.write_entry::<::planus::Offset<[u8]>>(13);
                        }
                        if prepared_chunk_lengths.is_some() {
                            table_writer.write_entry::<::planus::Offset<[u32]>>(14);
                        }
                        if prepared_bundle.is_some() {
                            table_writer.write_entry::<::planus::Offset<self::BundleRef>>(15);
                        }
                        if prepared_xorhash.is_some() {
                            table_writer.write_entry::<::planus::Offset<[u8]>>(16);
                        }
                        if prepared_symlink_target.is_some() {
                            table_writer.write_entry::<::planus::Offset<str>>(17);
                        }
                        if prepared_kind.is_some() {
                            table_writer.write_entry::<self::NodeKind>(3);
                        }

                        unsafe {
                            table_writer.finish(builder, |object_writer| {
                                if let ::core::option::Option::Some(prepared_node_id) =
                                    prepared_node_id
                                {
                                    object_writer.write::<_, _, 8>(&prepared_node_id);
                                }
                                if let ::core::option::Option::Some(prepared_parent_id) =
                                    prepared_parent_id
                                {
                                    object_writer.write::<_, _, 8>(&prepared_parent_id);
                                }
                                if let ::core::option::Option::Some(prepared_size) = prepared_size {
                                    object_writer.write::<_, _, 8>(&prepared_size);
                                }
                                if let ::core::option::Option::Some(prepared_creation_time_ns) =
                                    prepared_creation_time_ns
                                {
                                    object_writer.write::<_, _, 8>(&prepared_creation_time_ns);
                                }
                                if let ::core::option::Option::Some(prepared_last_write_time_ns) =
                                    prepared_last_write_time_ns
                                {
                                    object_writer.write::<_, _, 8>(&prepared_last_write_time_ns);
                                }
                                if let ::core::option::Option::Some(prepared_change_time_ns) =
                                    prepared_change_time_ns
                                {
                                    object_writer.write::<_, _, 8>(&prepared_change_time_ns);
                                }
                                if let ::core::option::Option::Some(prepared_name) = prepared_name {
                                    object_writer.write::<_, _, 4>(&prepared_name);
                                }
                                if let ::core::option::Option::Some(prepared_attributes) =
                                    prepared_attributes
                                {
                                    object_writer.write::<_, _, 4>(&prepared_attributes);
                                }
                                if let ::core::option::Option::Some(prepared_permission_key) =
                                    prepared_permission_key
                                {
                                    object_writer.write::<_, _, 4>(&prepared_permission_key);
                                }
                                if let ::core::option::Option::Some(prepared_permission_id) =
                                    prepared_permission_id
                                {
                                    object_writer.write::<_, _, 4>(&prepared_permission_id);
                                }
                                if let ::core::option::Option::Some(prepared_nfs) = prepared_nfs {
                                    object_writer.write::<_, _, 4>(&prepared_nfs);
                                }
                                if let ::core::option::Option::Some(prepared_metadata) =
                                    prepared_metadata
                                {
                                    object_writer.write::<_, _, 4>(&prepared_metadata);
                                }
                                if let ::core::option::Option::Some(prepared_chunk_ids) =
                                    prepared_chunk_ids
                                {
                                    object_writer.write::<_, _, 4>(&prepared_chunk_ids);
                                }
                                if let ::core::option::Option::Some(prepared_chunk_lengths) =
                                    prepared_chunk_lengths
                                {
                                    object_writer.write::<_, _, 4>(&prepared_chunk_lengths);
                                }
                                if let ::core::option::Option::Some(prepared_bundle) =
                                    prepared_bundle
                                {
                                    object_writer.write::<_, _, 4>(&prepared_bundle);
                                }
                                if let ::core::option::Option::Some(prepared_xorhash) =
                                    prepared_xorhash
                                {
                                    object_writer.write::<_, _, 4>(&prepared_xorhash);
                                }
                                if let ::core::option::Option::Some(prepared_symlink_target) =
                                    prepared_symlink_target
                                {
                                    object_writer.write::<_, _, 4>(&prepared_symlink_target);
                                }
                                if let ::core::option::Option::Some(prepared_kind) = prepared_kind {
                                    object_writer.write::<_, _, 1>(&prepared_kind);
                                }
                            });
                        }
                        builder.current_offset()
                    }
                }

                impl ::planus::WriteAs<::planus::Offset<NodeVersion>> for NodeVersion {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NodeVersion> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl ::planus::WriteAsOptional<::planus::Offset<NodeVersion>> for NodeVersion {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<NodeVersion>> {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl ::planus::WriteAsOffset<NodeVersion> for NodeVersion {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NodeVersion> {
                        NodeVersion::create(
                            builder,
                            self.node_id,
                            self.parent_id,
                            &self.name,
                            self.kind,
                            self.size,
                            self.attributes,
                            self.creation_time_ns,
                            self.last_write_time_ns,
                            self.change_time_ns,
                            &self.permission_key,
                            &self.permission_id,
                            &self.nfs,
                            &self.metadata,
                            &self.chunk_ids,
                            &self.chunk_lengths,
                            &self.bundle,
                            &self.xorhash,
                            &self.symlink_target,
                        )
                    }
                }

                /// Builder for serializing an instance of the [NodeVersion] type.
                ///
                /// Can be created using the [NodeVersion::builder] method.
                #[derive(Debug)]
                #[must_use]
                pub struct NodeVersionBuilder<State>(State);

                impl NodeVersionBuilder<()> {
                    /// Setter for the [`node_id` field](NodeVersion#structfield.node_id).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn node_id<T0>(self, value: T0) -> NodeVersionBuilder<(T0,)>
                    where
                        T0: ::planus::WriteAsDefault<u64, u64>,
                    {
                        NodeVersionBuilder((value,))
                    }

                    /// Sets the [`node_id` field](NodeVersion#structfield.node_id) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn node_id_as_default(
                        self,
                    ) -> NodeVersionBuilder<(::planus::DefaultValue,)> {
                        self.node_id(::planus::DefaultValue)
                    }
                }

                impl<T0> NodeVersionBuilder<(T0,)> {
                    /// Setter for the [`parent_id` field](NodeVersion#structfield.parent_id).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn parent_id<T1>(self, value: T1) -> NodeVersionBuilder<(T0, T1)>
                    where
                        T1: ::planus::WriteAsDefault<u64, u64>,
                    {
                        let (v0,) = self.0;
                        NodeVersionBuilder((v0, value))
                    }

                    /// Sets the [`parent_id` field](NodeVersion#structfield.parent_id) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn parent_id_as_default(
                        self,
                    ) -> NodeVersionBuilder<(T0, ::planus::DefaultValue)> {
                        self.parent_id(::planus::DefaultValue)
                    }
                }

                impl<T0, T1> NodeVersionBuilder<(T0, T1)> {
                    /// Setter for the [`name` field](NodeVersion#structfield.name).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn name<T2>(self, value: T2) -> NodeVersionBuilder<(T0, T1, T2)>
                    where
                        T2: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    {
                        let (v0, v1) = self.0;
                        NodeVersionBuilder((v0, v1, value))
                    }

                    /// Sets the [`name` field](NodeVersion#structfield.name) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn name_as_null(self) -> NodeVersionBuilder<(T0, T1, ())> {
                        self.name(())
                    }
                }

                impl<T0, T1, T2> NodeVersionBuilder<(T0, T1, T2)> {
                    /// Setter for the [`kind` field](NodeVersion#structfield.kind).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn kind<T3>(self, value: T3) -> NodeVersionBuilder<(T0, T1, T2, T3)>
                    where
                        T3: ::planus::WriteAsDefault<self::NodeKind, self::NodeKind>,
                    {
                        let (v0, v1, v2) = self.0;
                        NodeVersionBuilder((v0, v1, v2, value))
                    }

                    /// Sets the [`kind` field](NodeVersion#structfield.kind) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn kind_as_default(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, ::planus::DefaultValue)>
                    {
                        self.kind(::planus::DefaultValue)
                    }
                }

                impl<T0, T1, T2, T3> NodeVersionBuilder<(T0, T1, T2, T3)> {
                    /// Setter for the [`size` field](NodeVersion#structfield.size).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn size<T4>(self, value: T4) -> NodeVersionBuilder<(T0, T1, T2, T3, T4)>
                    where
                        T4: ::planus::WriteAsDefault<u64, u64>,
                    {
                        let (v0, v1, v2, v3) = self.0;
                        NodeVersionBuilder((v0, v1, v2, v3, value))
                    }

                    /// Sets the [`size` field](NodeVersion#structfield.size) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn size_as_default(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, ::planus::DefaultValue)>
                    {
                        self.size(::planus::DefaultValue)
                    }
                }

                impl<T0, T1, T2, T3, T4> NodeVersionBuilder<(T0, T1, T2, T3, T4)> {
                    /// Setter for the [`attributes` field](NodeVersion#structfield.attributes).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn attributes<T5>(
                        self,
                        value: T5,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5)>
                    where
                        T5: ::planus::WriteAsDefault<u32, u32>,
                    {
                        let (v0, v1, v2, v3, v4) = self.0;
                        NodeVersionBuilder((v0, v1, v2, v3, v4, value))
                    }

                    /// Sets the [`attributes` field](NodeVersion#structfield.attributes) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn attributes_as_default(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)>
                    {
                        self.attributes(::planus::DefaultValue)
                    }
                }

                impl<T0, T1, T2, T3, T4, T5> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5)> {
                    /// Setter for the [`creation_time_ns` field](NodeVersion#structfield.creation_time_ns).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn creation_time_ns<T6>(
                        self,
                        value: T6,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6)>
                    where
                        T6: ::planus::WriteAsDefault<i64, i64>,
                    {
                        let (v0, v1, v2, v3, v4, v5) = self.0;
                        NodeVersionBuilder((v0, v1, v2, v3, v4, v5, value))
                    }

                    /// Sets the [`creation_time_ns` field](NodeVersion#structfield.creation_time_ns) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn creation_time_ns_as_default(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, ::planus::DefaultValue)>
                    {
                        self.creation_time_ns(::planus::DefaultValue)
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6)> {
                    /// Setter for the [`last_write_time_ns` field](NodeVersion#structfield.last_write_time_ns).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn last_write_time_ns<T7>(
                        self,
                        value: T7,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
                    where
                        T7: ::planus::WriteAsDefault<i64, i64>,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6) = self.0;
                        NodeVersionBuilder((v0, v1, v2, v3, v4, v5, v6, value))
                    }

                    /// Sets the [`last_write_time_ns` field](NodeVersion#structfield.last_write_time_ns) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn last_write_time_ns_as_default(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, ::planus::DefaultValue)>
                    {
                        self.last_write_time_ns(::planus::DefaultValue)
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)> {
                    /// Setter for the [`change_time_ns` field](NodeVersion#structfield.change_time_ns).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn change_time_ns<T8>(
                        self,
                        value: T8,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8)>
                    where
                        T8: ::planus::WriteAsDefault<i64, i64>,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6, v7) = self.0;
                        NodeVersionBuilder((v0, v1, v2, v3, v4, v5, v6, v7, value))
                    }

                    /// Sets the [`change_time_ns` field](NodeVersion#structfield.change_time_ns) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn change_time_ns_as_default(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, ::planus::DefaultValue)>
                    {
                        self.change_time_ns(::planus::DefaultValue)
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7, T8> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8)> {
                    /// Setter for the [`permission_key` field](NodeVersion#structfield.permission_key).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn permission_key<T9>(
                        self,
                        value: T9,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9)>
                    where
                        T9: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6, v7, v8) = self.0;
                        NodeVersionBuilder((v0, v1, v2, v3, v4, v5, v6, v7, v8, value))
                    }

                    /// Sets the [`permission_key` field](NodeVersion#structfield.permission_key) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn permission_key_as_null(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, ())>
                    {
                        self.permission_key(())
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9>
                    NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9)>
                {
                    /// Setter for the [`permission_id` field](NodeVersion#structfield.permission_id).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn permission_id<T10>(
                        self,
                        value: T10,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10)>
                    where
                        T10: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9) = self.0;
                        NodeVersionBuilder((v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, value))
                    }

                    /// Sets the [`permission_id` field](NodeVersion#structfield.permission_id) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn permission_id_as_null(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, ())>
                    {
                        self.permission_id(())
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>
                    NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10)>
                {
                    /// Setter for the [`nfs` field](NodeVersion#structfield.nfs).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn nfs<T11>(
                        self,
                        value: T11,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11)>
                    where
                        T11: ::planus::WriteAsOptional<::planus::Offset<self::NfsAttributes>>,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10) = self.0;
                        NodeVersionBuilder((v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, value))
                    }

                    /// Sets the [`nfs` field](NodeVersion#structfield.nfs) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn nfs_as_null(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, ())>
                    {
                        self.nfs(())
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>
                    NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11)>
                {
                    /// Setter for the [`metadata` field](NodeVersion#structfield.metadata).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn metadata<T12>(
                        self,
                        value: T12,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12)>
                    where
                        T12: ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::KeyValue>]>,
                        >,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11) = self.0;
                        NodeVersionBuilder((
                            v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, value,
                        ))
                    }

                    /// Sets the [`metadata` field](NodeVersion#structfield.metadata) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn metadata_as_null(
                        self,
                    ) -> NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, ())>
                    {
                        self.metadata(())
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>
                    NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12)>
                {
                    /// Setter for the [`chunk_ids` field](NodeVersion#structfield.chunk_ids).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn chunk_ids<T13>(
                        self,
                        value: T13,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                    )>
                    where
                        T13: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12) = self.0;
                        NodeVersionBuilder((
                            v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, value,
                        ))
                    }

                    /// Sets the [`chunk_ids` field](NodeVersion#structfield.chunk_ids) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn chunk_ids_as_null(
                        self,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        (),
                    )> {
                        self.chunk_ids(())
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13>
                    NodeVersionBuilder<(T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13)>
                {
                    /// Setter for the [`chunk_lengths` field](NodeVersion#structfield.chunk_lengths).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn chunk_lengths<T14>(
                        self,
                        value: T14,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                    )>
                    where
                        T14: ::planus::WriteAsOptional<::planus::Offset<[u32]>>,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13) = self.0;
                        NodeVersionBuilder((
                            v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, value,
                        ))
                    }

                    /// Sets the [`chunk_lengths` field](NodeVersion#structfield.chunk_lengths) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn chunk_lengths_as_null(
                        self,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        (),
                    )> {
                        self.chunk_lengths(())
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14>
                    NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                    )>
                {
                    /// Setter for the [`bundle` field](NodeVersion#structfield.bundle).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn bundle<T15>(
                        self,
                        value: T15,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                    )>
                    where
                        T15: ::planus::WriteAsOptional<::planus::Offset<self::BundleRef>>,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14) =
                            self.0;
                        NodeVersionBuilder((
                            v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, value,
                        ))
                    }

                    /// Sets the [`bundle` field](NodeVersion#structfield.bundle) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn bundle_as_null(
                        self,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        (),
                    )> {
                        self.bundle(())
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15>
                    NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                    )>
                {
                    /// Setter for the [`xorhash` field](NodeVersion#structfield.xorhash).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn xorhash<T16>(
                        self,
                        value: T16,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        T16,
                    )>
                    where
                        T16: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                    {
                        let (v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15) =
                            self.0;
                        NodeVersionBuilder((
                            v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15,
                            value,
                        ))
                    }

                    /// Sets the [`xorhash` field](NodeVersion#structfield.xorhash) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn xorhash_as_null(
                        self,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        (),
                    )> {
                        self.xorhash(())
                    }
                }

                impl<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15, T16>
                    NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        T16,
                    )>
                {
                    /// Setter for the [`symlink_target` field](NodeVersion#structfield.symlink_target).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn symlink_target<T17>(
                        self,
                        value: T17,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        T16,
                        T17,
                    )>
                    where
                        T17: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    {
                        let (
                            v0,
                            v1,
                            v2,
                            v3,
                            v4,
                            v5,
                            v6,
                            v7,
                            v8,
                            v9,
                            v10,
                            v11,
                            v12,
                            v13,
                            v14,
                            v15,
                            v16,
                        ) = self.0;
                        NodeVersionBuilder((
                            v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15,
                            v16, value,
                        ))
                    }

                    /// Sets the [`symlink_target` field](NodeVersion#structfield.symlink_target) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn symlink_target_as_null(
                        self,
                    ) -> NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        T16,
                        (),
                    )> {
                        self.symlink_target(())
                    }
                }

                impl<
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        T16,
                        T17,
                    >
                    NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        T16,
                        T17,
                    )>
                {
                    /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [NodeVersion].
                    #[inline]
                    pub fn finish(
                        self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NodeVersion>
                    where
                        Self: ::planus::WriteAsOffset<NodeVersion>,
                    {
                        ::planus::WriteAsOffset::prepare(&self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsDefault<u64, u64>,
                        T1: ::planus::WriteAsDefault<u64, u64>,
                        T2: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                        T3: ::planus::WriteAsDefault<self::NodeKind, self::NodeKind>,
                        T4: ::planus::WriteAsDefault<u64, u64>,
                        T5: ::planus::WriteAsDefault<u32, u32>,
                        T6: ::planus::WriteAsDefault<i64, i64>,
                        T7: ::planus::WriteAsDefault<i64, i64>,
                        T8: ::planus::WriteAsDefault<i64, i64>,
                        T9: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                        T10: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T11: ::planus::WriteAsOptional<::planus::Offset<self::NfsAttributes>>,
                        T12: ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::KeyValue>]>,
                        >,
                        T13: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T14: ::planus::WriteAsOptional<::planus::Offset<[u32]>>,
                        T15: ::planus::WriteAsOptional<::planus::Offset<self::BundleRef>>,
                        T16: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T17: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    > ::planus::WriteAs<::planus::Offset<NodeVersion>>
                    for NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        T16,
                        T17,
                    )>
                {
                    type Prepared = ::planus::Offset<NodeVersion>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NodeVersion> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsDefault<u64, u64>,
                        T1: ::planus::WriteAsDefault<u64, u64>,
                        T2: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                        T3: ::planus::WriteAsDefault<self::NodeKind, self::NodeKind>,
                        T4: ::planus::WriteAsDefault<u64, u64>,
                        T5: ::planus::WriteAsDefault<u32, u32>,
                        T6: ::planus::WriteAsDefault<i64, i64>,
                        T7: ::planus::WriteAsDefault<i64, i64>,
                        T8: ::planus::WriteAsDefault<i64, i64>,
                        T9: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                        T10: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T11: ::planus::WriteAsOptional<::planus::Offset<self::NfsAttributes>>,
                        T12: ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::KeyValue>]>,
                        >,
                        T13: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T14: ::planus::WriteAsOptional<::planus::Offset<[u32]>>,
                        T15: ::planus::WriteAsOptional<::planus::Offset<self::BundleRef>>,
                        T16: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T17: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    > ::planus::WriteAsOptional<::planus::Offset<NodeVersion>>
                    for NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        T16,
                        T17,
                    )>
                {
                    type Prepared = ::planus::Offset<NodeVersion>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<NodeVersion>> {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl<
                        T0: ::planus::WriteAsDefault<u64, u64>,
                        T1: ::planus::WriteAsDefault<u64, u64>,
                        T2: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                        T3: ::planus::WriteAsDefault<self::NodeKind, self::NodeKind>,
                        T4: ::planus::WriteAsDefault<u64, u64>,
                        T5: ::planus::WriteAsDefault<u32, u32>,
                        T6: ::planus::WriteAsDefault<i64, i64>,
                        T7: ::planus::WriteAsDefault<i64, i64>,
                        T8: ::planus::WriteAsDefault<i64, i64>,
                        T9: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                        T10: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T11: ::planus::WriteAsOptional<::planus::Offset<self::NfsAttributes>>,
                        T12: ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::KeyValue>]>,
                        >,
                        T13: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T14: ::planus::WriteAsOptional<::planus::Offset<[u32]>>,
                        T15: ::planus::WriteAsOptional<::planus::Offset<self::BundleRef>>,
                        T16: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                        T17: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                    > ::planus::WriteAsOffset<NodeVersion>
                    for NodeVersionBuilder<(
                        T0,
                        T1,
                        T2,
                        T3,
                        T4,
                        T5,
                        T6,
                        T7,
                        T8,
                        T9,
                        T10,
                        T11,
                        T12,
                        T13,
                        T14,
                        T15,
                        T16,
                        T17,
                    )>
                {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<NodeVersion> {
                        let (
                            v0,
                            v1,
                            v2,
                            v3,
                            v4,
                            v5,
                            v6,
                            v7,
                            v8,
                            v9,
                            v10,
                            v11,
                            v12,
                            v13,
                            v14,
                            v15,
                            v16,
                            v17,
                        ) = &self.0;
                        NodeVersion::create(
                            builder, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13,
                            v14, v15, v16, v17,
                        )
                    }
                }

                /// Reference to a deserialized [NodeVersion].
                #[derive(Copy, Clone)]
                pub struct NodeVersionRef<'a>(
                    #[allow(dead_code)] ::planus::table_reader::Table<'a>,
                );

                impl<'a> NodeVersionRef<'a> {
                    /// Getter for the [`node_id` field](NodeVersion#structfield.node_id).
                    #[inline]
                    pub fn node_id(&self) -> ::planus::Result<u64> {
                        ::core::result::Result::Ok(
                            self.0.access(0, "NodeVersion", "node_id")?.unwrap_or(0),
                        )
                    }

                    /// Getter for the [`parent_id` field](NodeVersion#structfield.parent_id).
                    #[inline]
                    pub fn parent_id(&self) -> ::planus::Result<u64> {
                        ::core::result::Result::Ok(
                            self.0.access(1, "NodeVersion", "parent_id")?.unwrap_or(0),
                        )
                    }

                    /// Getter for the [`name` field](NodeVersion#structfield.name).
                    #[inline]
                    pub fn name(
                        &self,
                    ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>>
                    {
                        self.0.access(2, "NodeVersion", "name")
                    }

                    /// Getter for the [`kind` field](NodeVersion#structfield.kind).
                    #[inline]
                    pub fn kind(&self) -> ::planus::Result<self::NodeKind> {
                        ::core::result::Result::Ok(
                            self.0
                                .access(3, "NodeVersion", "kind")?
                                .unwrap_or(self::NodeKind::File),
                        )
                    }

                    /// Getter for the [`size` field](NodeVersion#structfield.size).
                    #[inline]
                    pub fn size(&self) -> ::planus::Result<u64> {
                        ::core::result::Result::Ok(
                            self.0.access(4, "NodeVersion", "size")?.unwrap_or(0),
                        )
                    }

                    /// Getter for the [`attributes` field](NodeVersion#structfield.attributes).
                    #[inline]
                    pub fn attributes(&self) -> ::planus::Result<u32> {
                        ::core::result::Result::Ok(
                            self.0.access(5, "NodeVersion", "attributes")?.unwrap_or(0),
                        )
                    }

                    /// Getter for the [`creation_time_ns` field](NodeVersion#structfield.creation_time_ns).
                    #[inline]
                    pub fn creation_time_ns(&self) -> ::planus::Result<i64> {
                        ::core::result::Result::Ok(
                            self.0
                                .access(6, "NodeVersion", "creation_time_ns")?
                                .unwrap_or(0),
                        )
                    }

                    /// Getter for the [`last_write_time_ns` field](NodeVersion#structfield.last_write_time_ns).
                    #[inline]
                    pub fn last_write_time_ns(&self) -> ::planus::Result<i64> {
                        ::core::result::Result::Ok(
                            self.0
                                .access(7, "NodeVersion", "last_write_time_ns")?
                                .unwrap_or(0),
                        )
                    }

                    /// Getter for the [`change_time_ns` field](NodeVersion#structfield.change_time_ns).
                    #[inline]
                    pub fn change_time_ns(&self) -> ::planus::Result<i64> {
                        ::core::result::Result::Ok(
                            self.0
                                .access(8, "NodeVersion", "change_time_ns")?
                                .unwrap_or(0),
                        )
                    }

                    /// Getter for the [`permission_key` field](NodeVersion#structfield.permission_key).
                    #[inline]
                    pub fn permission_key(
                        &self,
                    ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>>
                    {
                        self.0.access(9, "NodeVersion", "permission_key")
                    }

                    /// Getter for the [`permission_id` field](NodeVersion#structfield.permission_id).
                    #[inline]
                    pub fn permission_id(
                        &self,
                    ) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                        self.0.access(10, "NodeVersion", "permission_id")
                    }

                    /// Getter for the [`nfs` field](NodeVersion#structfield.nfs).
                    #[inline]
                    pub fn nfs(
                        &self,
                    ) -> ::planus::Result<::core::option::Option<self::NfsAttributesRef<'a>>>
                    {
                        self.0.access(11, "NodeVersion", "nfs")
                    }

                    /// Getter for the [`metadata` field](NodeVersion#structfield.metadata).
                    #[inline]
                    pub fn metadata(
                        &self,
                    ) -> ::planus::Result<
                        ::core::option::Option<
                            ::planus::Vector<'a, ::planus::Result<self::KeyValueRef<'a>>>,
                        >,
                    > {
                        self.0.access(12, "NodeVersion", "metadata")
                    }

                    /// Getter for the [`chunk_ids` field](NodeVersion#structfield.chunk_ids).
                    #[inline]
                    pub fn chunk_ids(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                        self.0.access(13, "NodeVersion", "chunk_ids")
                    }

                    /// Getter for the [`chunk_lengths` field](NodeVersion#structfield.chunk_lengths).
                    #[inline]
                    pub fn chunk_lengths(
                        &self,
                    ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, u32>>>
                    {
                        self.0.access(14, "NodeVersion", "chunk_lengths")
                    }

                    /// Getter for the [`bundle` field](NodeVersion#structfield.bundle).
                    #[inline]
                    pub fn bundle(
                        &self,
                    ) -> ::planus::Result<::core::option::Option<self::BundleRefRef<'a>>>
                    {
                        self.0.access(15, "NodeVersion", "bundle")
                    }

                    /// Getter for the [`xorhash` field](NodeVersion#structfield.xorhash).
                    #[inline]
                    pub fn xorhash(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                        self.0.access(16, "NodeVersion", "xorhash")
                    }

                    /// Getter for the [`symlink_target` field](NodeVersion#structfield.symlink_target).
                    #[inline]
                    pub fn symlink_target(
                        &self,
                    ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>>
                    {
                        self.0.access(17, "NodeVersion", "symlink_target")
                    }
                }

                impl<'a> ::core::fmt::Debug for NodeVersionRef<'a> {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        let mut f = f.debug_struct("NodeVersionRef");
                        f.field("node_id", &self.node_id());
                        f.field("parent_id", &self.parent_id());
                        if let ::core::option::Option::Some(field_name) = self.name().transpose() {
                            f.field("name", &field_name);
                        }
                        f.field("kind", &self.kind());
                        f.field("size", &self.size());
                        f.field("attributes", &self.attributes());
                        f.field("creation_time_ns", &self.creation_time_ns());
                        f.field("last_write_time_ns", &self.last_write_time_ns());
                        f.field("change_time_ns", &self.change_time_ns());
                        if let ::core::option::Option::Some(field_permission_key) =
                            self.permission_key().transpose()
                        {
                            f.field("permission_key", &field_permission_key);
                        }
                        if let ::core::option::Option::Some(field_permission_id) =
                            self.permission_id().transpose()
                        {
                            f.field("permission_id", &field_permission_id);
                        }
                        if let ::core::option::Option::Some(field_nfs) = self.nfs().transpose() {
                            f.field("nfs", &field_nfs);
                        }
                        if let ::core::option::Option::Some(field_metadata) =
                            self.metadata().transpose()
                        {
                            f.field("metadata", &field_metadata);
                        }
                        if let ::core::option::Option::Some(field_chunk_ids) =
                            self.chunk_ids().transpose()
                        {
                            f.field("chunk_ids", &field_chunk_ids);
                        }
                        if let ::core::option::Option::Some(field_chunk_lengths) =
                            self.chunk_lengths().transpose()
                        {
                            f.field("chunk_lengths", &field_chunk_lengths);
                        }
                        if let ::core::option::Option::Some(field_bundle) =
                            self.bundle().transpose()
                        {
                            f.field("bundle", &field_bundle);
                        }
                        if let ::core::option::Option::Some(field_xorhash) =
                            self.xorhash().transpose()
                        {
                            f.field("xorhash", &field_xorhash);
                        }
                        if let ::core::option::Option::Some(field_symlink_target) =
                            self.symlink_target().transpose()
                        {
                            f.field("symlink_target", &field_symlink_target);
                        }
                        f.finish()
                    }
                }

                impl<'a> ::core::convert::TryFrom<NodeVersionRef<'a>> for NodeVersion {
                    type Error = ::planus::Error;

                    #[allow(unreachable_code)]
                    fn try_from(value: NodeVersionRef<'a>) -> ::planus::Result<Self> {
                        ::core::result::Result::Ok(Self {
                            node_id: ::core::convert::TryInto::try_into(value.node_id()?)?,
                            parent_id: ::core::convert::TryInto::try_into(value.parent_id()?)?,
                            name: value.name()?.map(::core::convert::Into::into),
                            kind: ::core::convert::TryInto::try_into(value.kind()?)?,
                            size: ::core::convert::TryInto::try_into(value.size()?)?,
                            attributes: ::core::convert::TryInto::try_into(value.attributes()?)?,
                            creation_time_ns: ::core::convert::TryInto::try_into(
                                value.creation_time_ns()?,
                            )?,
                            last_write_time_ns: ::core::convert::TryInto::try_into(
                                value.last_write_time_ns()?,
                            )?,
                            change_time_ns: ::core::convert::TryInto::try_into(
                                value.change_time_ns()?,
                            )?,
                            permission_key: value
                                .permission_key()?
                                .map(::core::convert::Into::into),
                            permission_id: value.permission_id()?.map(|v| v.to_vec()),
                            nfs: if let ::core::option::Option::Some(nfs) = value.nfs()? {
                                ::core::option::Option::Some(::planus::alloc::boxed::Box::new(
                                    ::core::convert::TryInto::try_into(nfs)?,
                                ))
                            } else {
                                ::core::option::Option::None
                            },
                            metadata: if let ::core::option::Option::Some(metadata) =
                                value.metadata()?
                            {
                                ::core::option::Option::Some(metadata.to_vec_result()?)
                            } else {
                                ::core::option::Option::None
                            },
                            chunk_ids: value.chunk_ids()?.map(|v| v.to_vec()),
                            chunk_lengths: if let ::core::option::Option::Some(chunk_lengths) =
                                value.chunk_lengths()?
                            {
                                ::core::option::Option::Some(chunk_lengths.to_vec()?)
                            } else {
                                ::core::option::Option::None
                            },
                            bundle: if let ::core::option::Option::Some(bundle) = value.bundle()? {
                                ::core::option::Option::Some(::planus::alloc::boxed::Box::new(
                                    ::core::convert::TryInto::try_into(bundle)?,
                                ))
                            } else {
                                ::core::option::Option::None
                            },
                            xorhash: value.xorhash()?.map(|v| v.to_vec()),
                            symlink_target: value
                                .symlink_target()?
                                .map(::core::convert::Into::into),
                        })
                    }
                }

                impl<'a> ::planus::TableRead<'a> for NodeVersionRef<'a> {
                    #[inline]
                    fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind>
                    {
                        ::core::result::Result::Ok(Self(
                            ::planus::table_reader::Table::from_buffer(buffer, offset)?,
                        ))
                    }
                }

                impl<'a> ::planus::VectorReadInner<'a> for NodeVersionRef<'a> {
                    type Error = ::planus::Error;
                    const STRIDE: usize = 4;

                    unsafe fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                            error_kind.with_error_location(
                                "[NodeVersionRef]",
                                "get",
                                buffer.offset_from_start,
                            )
                        })
                    }
                }

                /// # Safety
                /// The planus compiler generates implementations that initialize
                /// the bytes in `write_values`.
                unsafe impl ::planus::VectorWrite<::planus::Offset<NodeVersion>> for NodeVersion {
                    type Value = ::planus::Offset<NodeVersion>;
                    const STRIDE: usize = 4;
                    #[inline]
                    fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                        ::planus::WriteAs::prepare(self, builder)
                    }

                    #[inline]
                    unsafe fn write_values(
                        values: &[::planus::Offset<NodeVersion>],
                        bytes: *mut ::core::mem::MaybeUninit<u8>,
                        buffer_position: u32,
                    ) {
                        let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                        for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                            ::planus::WriteAsPrimitive::write(
                                v,
                                ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                                buffer_position - (Self::STRIDE * i) as u32,
                            );
                        }
                    }
                }

                impl<'a> ::planus::ReadAsRoot<'a> for NodeVersionRef<'a> {
                    fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(
                            ::planus::SliceWithStartOffset {
                                buffer: slice,
                                offset_from_start: 0,
                            },
                            0,
                        )
                        .map_err(|error_kind| {
                            error_kind.with_error_location("[NodeVersionRef]", "read_as_root", 0)
                        })
                    }
                }

                /// The table `MetadataBatch` in the namespace `afb.repository.fb`
                ///
                /// Generated from these locations:
                /// * Table `MetadataBatch` in the file `schema/node_version.fbs:61`
                #[derive(
                    Clone,
                    Debug,
                    PartialEq,
                    PartialOrd,
                    Eq,
                    Ord,
                    Hash,
                    ::serde::Serialize,
                    ::serde::Deserialize,
                )]
                pub struct MetadataBatch {
                    /// The field `format_version` in the table `MetadataBatch`
                    pub format_version: u16,
                    /// The field `versions` in the table `MetadataBatch`
                    pub versions:
                        ::core::option::Option<::planus::alloc::vec::Vec<self::NodeVersion>>,
                }

                #[allow(clippy::derivable_impls)]
                impl ::core::default::Default for MetadataBatch {
                    fn default() -> Self {
                        Self {
                            format_version: 1,
                            versions: ::core::default::Default::default(),
                        }
                    }
                }

                impl MetadataBatch {
                    /// Creates a [MetadataBatchBuilder] for serializing an instance of this table.
                    #[inline]
                    pub fn builder() -> MetadataBatchBuilder<()> {
                        MetadataBatchBuilder(())
                    }

                    #[allow(clippy::too_many_arguments)]
                    pub fn create(
                        builder: &mut ::planus::Builder,
                        field_format_version: impl ::planus::WriteAsDefault<u16, u16>,
                        field_versions: impl ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::NodeVersion>]>,
                        >,
                    ) -> ::planus::Offset<Self> {
                        let prepared_format_version = field_format_version.prepare(builder, &1);
                        let prepared_versions = field_versions.prepare(builder);

                        let mut table_writer: ::planus::table_writer::TableWriter<8> =
                            ::core::default::Default::default();
                        if prepared_versions.is_some() {
                            table_writer.write_entry::<::planus::Offset<[::planus::Offset<self::NodeVersion>]>>(1);
                        }
                        if prepared_format_version.is_some() {
                            table_writer.write_entry::<u16>(0);
                        }

                        unsafe {
                            table_writer.finish(builder, |object_writer| {
                                if let ::core::option::Option::Some(prepared_versions) =
                                    prepared_versions
                                {
                                    object_writer.write::<_, _, 4>(&prepared_versions);
                                }
                                if let ::core::option::Option::Some(prepared_format_version) =
                                    prepared_format_version
                                {
                                    object_writer.write::<_, _, 2>(&prepared_format_version);
                                }
                            });
                        }
                        builder.current_offset()
                    }
                }

                impl ::planus::WriteAs<::planus::Offset<MetadataBatch>> for MetadataBatch {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<MetadataBatch> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl ::planus::WriteAsOptional<::planus::Offset<MetadataBatch>> for MetadataBatch {
                    type Prepared = ::planus::Offset<Self>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<MetadataBatch>>
                    {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl ::planus::WriteAsOffset<MetadataBatch> for MetadataBatch {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<MetadataBatch> {
                        MetadataBatch::create(builder, self.format_version, &self.versions)
                    }
                }

                /// Builder for serializing an instance of the [MetadataBatch] type.
                ///
                /// Can be created using the [MetadataBatch::builder] method.
                #[derive(Debug)]
                #[must_use]
                pub struct MetadataBatchBuilder<State>(State);

                impl MetadataBatchBuilder<()> {
                    /// Setter for the [`format_version` field](MetadataBatch#structfield.format_version).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn format_version<T0>(self, value: T0) -> MetadataBatchBuilder<(T0,)>
                    where
                        T0: ::planus::WriteAsDefault<u16, u16>,
                    {
                        MetadataBatchBuilder((value,))
                    }

                    /// Sets the [`format_version` field](MetadataBatch#structfield.format_version) to the default value.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn format_version_as_default(
                        self,
                    ) -> MetadataBatchBuilder<(::planus::DefaultValue,)> {
                        self.format_version(::planus::DefaultValue)
                    }
                }

                impl<T0> MetadataBatchBuilder<(T0,)> {
                    /// Setter for the [`versions` field](MetadataBatch#structfield.versions).
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn versions<T1>(self, value: T1) -> MetadataBatchBuilder<(T0, T1)>
                    where
                        T1: ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::NodeVersion>]>,
                        >,
                    {
                        let (v0,) = self.0;
                        MetadataBatchBuilder((v0, value))
                    }

                    /// Sets the [`versions` field](MetadataBatch#structfield.versions) to null.
                    #[inline]
                    #[allow(clippy::type_complexity)]
                    pub fn versions_as_null(self) -> MetadataBatchBuilder<(T0, ())> {
                        self.versions(())
                    }
                }

                impl<T0, T1> MetadataBatchBuilder<(T0, T1)> {
                    /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [MetadataBatch].
                    #[inline]
                    pub fn finish(
                        self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<MetadataBatch>
                    where
                        Self: ::planus::WriteAsOffset<MetadataBatch>,
                    {
                        ::planus::WriteAsOffset::prepare(&self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsDefault<u16, u16>,
                        T1: ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::NodeVersion>]>,
                        >,
                    > ::planus::WriteAs<::planus::Offset<MetadataBatch>>
                    for MetadataBatchBuilder<(T0, T1)>
                {
                    type Prepared = ::planus::Offset<MetadataBatch>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<MetadataBatch> {
                        ::planus::WriteAsOffset::prepare(self, builder)
                    }
                }

                impl<
                        T0: ::planus::WriteAsDefault<u16, u16>,
                        T1: ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::NodeVersion>]>,
                        >,
                    > ::planus::WriteAsOptional<::planus::Offset<MetadataBatch>>
                    for MetadataBatchBuilder<(T0, T1)>
                {
                    type Prepared = ::planus::Offset<MetadataBatch>;

                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::core::option::Option<::planus::Offset<MetadataBatch>>
                    {
                        ::core::option::Option::Some(::planus::WriteAsOffset::prepare(
                            self, builder,
                        ))
                    }
                }

                impl<
                        T0: ::planus::WriteAsDefault<u16, u16>,
                        T1: ::planus::WriteAsOptional<
                            ::planus::Offset<[::planus::Offset<self::NodeVersion>]>,
                        >,
                    > ::planus::WriteAsOffset<MetadataBatch> for MetadataBatchBuilder<(T0, T1)>
                {
                    #[inline]
                    fn prepare(
                        &self,
                        builder: &mut ::planus::Builder,
                    ) -> ::planus::Offset<MetadataBatch> {
                        let (v0, v1) = &self.0;
                        MetadataBatch::create(builder, v0, v1)
                    }
                }

                /// Reference to a deserialized [MetadataBatch].
                #[derive(Copy, Clone)]
                pub struct MetadataBatchRef<'a>(
                    #[allow(dead_code)] ::planus::table_reader::Table<'a>,
                );

                impl<'a> MetadataBatchRef<'a> {
                    /// Getter for the [`format_version` field](MetadataBatch#structfield.format_version).
                    #[inline]
                    pub fn format_version(&self) -> ::planus::Result<u16> {
                        ::core::result::Result::Ok(
                            self.0
                                .access(0, "MetadataBatch", "format_version")?
                                .unwrap_or(1),
                        )
                    }

                    /// Getter for the [`versions` field](MetadataBatch#structfield.versions).
                    #[inline]
                    pub fn versions(
                        &self,
                    ) -> ::planus::Result<
                        ::core::option::Option<
                            ::planus::Vector<'a, ::planus::Result<self::NodeVersionRef<'a>>>,
                        >,
                    > {
                        self.0.access(1, "MetadataBatch", "versions")
                    }
                }

                impl<'a> ::core::fmt::Debug for MetadataBatchRef<'a> {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        let mut f = f.debug_struct("MetadataBatchRef");
                        f.field("format_version", &self.format_version());
                        if let ::core::option::Option::Some(field_versions) =
                            self.versions().transpose()
                        {
                            f.field("versions", &field_versions);
                        }
                        f.finish()
                    }
                }

                impl<'a> ::core::convert::TryFrom<MetadataBatchRef<'a>> for MetadataBatch {
                    type Error = ::planus::Error;

                    #[allow(unreachable_code)]
                    fn try_from(value: MetadataBatchRef<'a>) -> ::planus::Result<Self> {
                        ::core::result::Result::Ok(Self {
                            format_version: ::core::convert::TryInto::try_into(
                                value.format_version()?,
                            )?,
                            versions: if let ::core::option::Option::Some(versions) =
                                value.versions()?
                            {
                                ::core::option::Option::Some(versions.to_vec_result()?)
                            } else {
                                ::core::option::Option::None
                            },
                        })
                    }
                }

                impl<'a> ::planus::TableRead<'a> for MetadataBatchRef<'a> {
                    #[inline]
                    fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind>
                    {
                        ::core::result::Result::Ok(Self(
                            ::planus::table_reader::Table::from_buffer(buffer, offset)?,
                        ))
                    }
                }

                impl<'a> ::planus::VectorReadInner<'a> for MetadataBatchRef<'a> {
                    type Error = ::planus::Error;
                    const STRIDE: usize = 4;

                    unsafe fn from_buffer(
                        buffer: ::planus::SliceWithStartOffset<'a>,
                        offset: usize,
                    ) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                            error_kind.with_error_location(
                                "[MetadataBatchRef]",
                                "get",
                                buffer.offset_from_start,
                            )
                        })
                    }
                }

                /// # Safety
                /// The planus compiler generates implementations that initialize
                /// the bytes in `write_values`.
                unsafe impl ::planus::VectorWrite<::planus::Offset<MetadataBatch>> for MetadataBatch {
                    type Value = ::planus::Offset<MetadataBatch>;
                    const STRIDE: usize = 4;
                    #[inline]
                    fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                        ::planus::WriteAs::prepare(self, builder)
                    }

                    #[inline]
                    unsafe fn write_values(
                        values: &[::planus::Offset<MetadataBatch>],
                        bytes: *mut ::core::mem::MaybeUninit<u8>,
                        buffer_position: u32,
                    ) {
                        let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                        for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                            ::planus::WriteAsPrimitive::write(
                                v,
                                ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                                buffer_position - (Self::STRIDE * i) as u32,
                            );
                        }
                    }
                }

                impl<'a> ::planus::ReadAsRoot<'a> for MetadataBatchRef<'a> {
                    fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                        ::planus::TableRead::from_buffer(
                            ::planus::SliceWithStartOffset {
                                buffer: slice,
                                offset_from_start: 0,
                            },
                            0,
                        )
                        .map_err(|error_kind| {
                            error_kind.with_error_location("[MetadataBatchRef]", "read_as_root", 0)
                        })
                    }
                }
            }
        }
    }
}
