'use strict';
// Search-as-you-type changelist filters (apps.kit.admin_autocomplete): choosing an entry
// applies the filter; clearing it removes the filter (an empty value is not sent, since the
// admin would read it as a broken lookup).
{
    const $ = django.jQuery;
    $(function() {
        $('form.autocomplete-filter select').on('change', function() {
            if (!this.value) {
                this.disabled = true;
            }
            this.form.submit();
        });
    });
}
